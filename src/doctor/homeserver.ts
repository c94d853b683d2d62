/**
 * `--homeserver NAME`: resolves NAME with the very pieces account/register and onbind use
 * (ServerNameResolver, fetchWellKnown, the guarded HTTPS agent and the IP guard, configured from
 * `federation.*`), recording each step: well-known, SRV `_matrix-fed._tcp` / `_matrix._tcp`, the target,
 * the addresses and whether the guard refuses them (and which rule), the TLS certificate, and whether
 * `GET /_matrix/federation/v1/openid/userinfo` answers (401 for a dummy token means reachable).
 * Nothing is contacted at an address the guard refuses.
 */
import { randomBytes } from "node:crypto";
import { BlockList, isIP } from "node:net";
import { checkServerIdentity, rootCertificates, connect as tlsConnect } from "node:tls";
import type { ResolvedConfig } from "../config/load.js";
import { createSystemDnsResolver, type DnsResolver, type SrvRecord } from "../federation/dns.js";
import { FederationError } from "../federation/errors.js";
import { GuardedHttp } from "../federation/http.js";
import {
  DEFAULT_IPV4_DENYLIST,
  DEFAULT_IPV6_DENYLIST,
  embeddedIPv4,
  IpGuard,
  parseCidr,
} from "../federation/ip-guard.js";
import { ServerNameResolver } from "../federation/resolver.js";
import { formatHost, parseServerName } from "../federation/server-name.js";
import { fetchWellKnown, type WellKnownResult } from "../federation/well-known.js";
import { errorText, type Group, type Report } from "./report.js";

export interface HomeserverCheckOptions {
  /** DNS to use (default: the system's). Tests inject a stub that maps test names to loopback. */
  dns?: DnsResolver;
  /** TEST ONLY: port of the well-known request instead of 443 (as HomeserverClientOptions.wellKnownPort). */
  wellKnownPort?: number;
  /** Extra trusted CA certificates (PEM), as HomeserverClientOptions.caCertificates. */
  caCertificates?: readonly string[];
}

const ALLOWLIST_FIX =
  "if this homeserver really is on a private network, add its address to federation.ip_allowlist";

/** Which rule refuses `ip`: the matching denylist entry, or undefined when the guard allows it. */
export function refusalReason(ip: string, cfg: ResolvedConfig["federation"]): string | undefined {
  const guard = new IpGuard({ allowlist: cfg.ip_allowlist, denylist: cfg.ip_denylist });
  if (guard.isAllowed(ip)) return undefined;
  const v4 = embeddedIPv4(ip);
  const candidates = v4 && !ip.includes(".") ? [ip, v4] : v4 ? [v4] : [ip];
  const rules: Array<[string, string]> = [
    ...DEFAULT_IPV4_DENYLIST.map((c): [string, string] => [c, "default denylist"]),
    ...DEFAULT_IPV6_DENYLIST.map((c): [string, string] => [c, "default denylist"]),
    ...cfg.ip_denylist.map((c): [string, string] => [c, "federation.ip_denylist"]),
  ];
  for (const addr of candidates) {
    const family = isIP(addr) === 4 ? "ipv4" : "ipv6";
    for (const [text, source] of rules) {
      const c = parseCidr(text);
      if (c.family !== family) continue;
      const list = new BlockList();
      list.addSubnet(c.address, c.prefix, c.family);
      if (list.check(addr, family))
        return `${addr === ip ? ip : `${ip} (embeds ${addr})`} is in ${text} (${source})`;
    }
  }
  return `${ip} is not a routable address`;
}

function srvText(records: SrvRecord[]): string {
  return records.map((r) => `${r.name}:${r.port} (priority ${r.priority}, weight ${r.weight})`).join(", ");
}

export async function checkHomeserver(
  cfg: ResolvedConfig,
  name: string,
  report: Report,
  options: HomeserverCheckOptions = {},
): Promise<void> {
  const g = report.group(`homeserver ${name}`);
  const parsed = parseServerName(name);
  if (parsed === null) {
    g.fail(
      "server name",
      `"${name}" is not a valid server name`,
      "give a host name such as example.org (optionally :port)",
    );
    return;
  }
  const fed = cfg.federation;
  const guard = new IpGuard({ allowlist: fed.ip_allowlist, denylist: fed.ip_denylist });
  const baseDns = options.dns ?? createSystemDnsResolver();
  const srvAnswers = new Map<string, string>();
  const dns: DnsResolver = {
    lookup: (host) => baseDns.lookup(host),
    async resolveSrv(srvName) {
      try {
        const records = await baseDns.resolveSrv(srvName);
        srvAnswers.set(srvName, records.length ? srvText(records) : "no records");
        return records;
      } catch (e) {
        srvAnswers.set(srvName, `no records (${(e as { code?: string }).code ?? errorText(e)})`);
        throw e;
      }
    },
  };
  const http = new GuardedHttp({
    guard,
    dns,
    verifyCertificates: fed.verify_certificates,
    ...(options.caCertificates ? { caCertificates: options.caCertificates } : {}),
    connectTimeoutMs: fed.connect_timeout_ms,
    requestTimeoutMs: fed.request_timeout_ms,
    userAgent: "Seraph doctor",
  });
  let wellKnown: { host: string; result: WellKnownResult } | undefined;
  const resolver = new ServerNameResolver({
    dns,
    wellKnown: async (hostname) => {
      const result = await fetchWellKnown(
        http,
        hostname,
        options.wellKnownPort === undefined ? {} : { port: options.wellKnownPort },
      );
      wellKnown = { host: hostname, result };
      return result;
    },
  });
  try {
    if (!fed.verify_certificates)
      g.warn(
        "certificate checks",
        "federation.verify_certificates is false: any server can pose as any homeserver",
        "set federation.verify_certificates: true",
      );
    let target: Awaited<ReturnType<ServerNameResolver["resolve"]>>;
    try {
      target = await resolver.resolve(name);
    } catch (e) {
      reportSteps(g, wellKnown, srvAnswers);
      g.fail(
        "resolution",
        errorText(e),
        e instanceof FederationError && e.kind === "unreachable"
          ? 'the homeserver\'s SRV record says it does not federate (target ".")'
          : "check the homeserver's DNS",
      );
      return;
    }
    reportSteps(g, wellKnown, srvAnswers);
    const via = {
      ip_literal: "IP literal",
      explicit_port: "explicit port",
      srv_matrix_fed: "SRV _matrix-fed._tcp",
      srv_matrix: "SRV _matrix._tcp (deprecated)",
      default_port: "default port 8448",
    }[target.via];
    const hostPort = formatHost(target.targetHost, target.targetPort);
    g.pass(
      "target",
      `${hostPort} via ${via}${target.delegated ? " after delegation" : ""}; Host: ${target.hostHeader}; TLS name: ${target.tlsServerName ?? "(IP address, no SNI)"}`,
    );

    // Addresses and the IP guard.
    let addresses: string[];
    if (isIP(target.targetHost)) addresses = [target.targetHost];
    else {
      try {
        addresses = (await dns.lookup(target.targetHost)).map((a) => a.address);
      } catch (e) {
        g.fail(
          "addresses",
          `${target.targetHost}: ${errorText(e)}`,
          `${target.targetHost} needs an A or AAAA record`,
        );
        return;
      }
    }
    const allowed: string[] = [];
    for (const ip of addresses) {
      const why = refusalReason(ip, fed);
      if (why === undefined) allowed.push(ip);
      else g.fail(`IP guard ${ip}`, `refused: ${why}`, ALLOWLIST_FIX);
    }
    if (allowed.length === 0) return;
    g.pass("addresses", `${allowed.join(", ")} allowed by the IP guard`);

    // TLS as the client would do it: SNI and certificate name from the Host header (none for IP literals).
    const address = allowed[0]!;
    const tlsOk = await checkTls(g, address, target.targetPort, target.tlsServerName, fed, options);

    // The OpenID userinfo endpoint, through the guarded agent, exactly as account/register calls it.
    const url = new URL(`https://${hostPort}/_matrix/federation/v1/openid/userinfo`);
    url.search = `access_token=${randomBytes(16).toString("hex")}`;
    try {
      const res = await http.request(
        { url, hostHeader: target.hostHeader, method: "GET", maxBytes: 64 * 1024 },
        `openid userinfo from ${name}`,
      );
      let errcode: unknown;
      try {
        errcode = (JSON.parse(res.body.toString("utf8")) as { errcode?: unknown }).errcode;
      } catch {
        errcode = undefined;
      }
      if (res.status === 401 || res.status === 403)
        g.pass(
          "openid userinfo",
          `answered ${res.status}${typeof errcode === "string" ? ` ${errcode}` : ""} for a dummy token: reachable`,
        );
      else
        g.fail(
          "openid userinfo",
          `GET /_matrix/federation/v1/openid/userinfo answered ${res.status}${typeof errcode === "string" ? ` ${errcode}` : ""}`,
          res.status === 404
            ? "the homeserver (or its proxy) must serve /_matrix/federation/ on this port"
            : "see the homeserver's log",
        );
    } catch (e) {
      g.fail(
        "openid userinfo",
        errorText(e),
        tlsOk ? "see the homeserver's log and the steps above" : "fix the TLS problem above",
      );
    }
  } finally {
    await http.close();
  }
}

function reportSteps(
  g: Group,
  wellKnown: { host: string; result: WellKnownResult } | undefined,
  srv: Map<string, string>,
): void {
  if (wellKnown) {
    const { host, result } = wellKnown;
    if (result.server !== null)
      g.pass("well-known", `https://${host}/.well-known/matrix/server → m.server ${result.server}`);
    else
      g.pass(
        "well-known",
        `https://${host}/.well-known/matrix/server: none (${result.error ?? "failed"}); continuing without delegation`,
      );
  }
  for (const [name, answer] of srv)
    g.pass(`SRV ${name.split(".").slice(0, 2).join(".")}`, `${name}: ${answer}`);
}

async function checkTls(
  g: Group,
  address: string,
  port: number,
  servername: string | null,
  fed: ResolvedConfig["federation"],
  options: HomeserverCheckOptions,
): Promise<boolean> {
  const name = servername ?? address;
  return new Promise<boolean>((resolvePromise) => {
    const socket = tlsConnect({
      host: address,
      port,
      ...(servername ? { servername } : {}),
      rejectUnauthorized: false,
      ...(options.caCertificates?.length ? { ca: [...rootCertificates, ...options.caCertificates] } : {}),
      timeout: fed.connect_timeout_ms,
    });
    const done = (ok: boolean) => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      const subject = cert.subjectaltname ?? cert.subject?.CN ?? "?";
      const until = cert.valid_to ?? "?";
      const nameError = checkServerIdentity(name, cert);
      const problem = socket.authorizationError ? String(socket.authorizationError) : nameError?.message;
      if (problem === undefined) {
        g.pass("TLS certificate", `valid for ${name} (${subject}), until ${until}`);
        done(true);
      } else if (!fed.verify_certificates) {
        g.warn("TLS certificate", `${problem}; accepted because federation.verify_certificates is false`);
        done(true);
      } else {
        g.fail(
          "TLS certificate",
          `${formatHost(address, port)} for ${name}: ${problem} (${subject})`,
          `the homeserver needs a certificate for ${name} from a public CA (e.g. Let's Encrypt)`,
        );
        done(false);
      }
    });
    socket.once("timeout", () => {
      g.fail("TLS certificate", `${formatHost(address, port)}: timed out`, "check the port and firewalls");
      done(false);
    });
    socket.once("error", (e) => {
      g.fail(
        "TLS certificate",
        `${formatHost(address, port)}: ${errorText(e)}`,
        "the homeserver must accept TLS connections on this port",
      );
      done(false);
    });
  });
}
