/**
 * Self-signed TLS certificates for tests, generated with `/usr/bin/openssl` into a temp dir.
 * Results are memoised per process (one openssl run per distinct name set).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SelfSignedCertificate {
  /** PEM private key (EC P-256). */
  key: string;
  /** PEM certificate; also usable as a trusted CA (it is self-signed). */
  cert: string;
}

export interface CertificateNames {
  /** DNS names for the subjectAltName (the first one is also the CN). Default `["hs.test"]`. */
  dnsNames?: readonly string[];
  /** IP addresses for the subjectAltName. Default `["127.0.0.1"]`. */
  ipAddresses?: readonly string[];
}

const cache = new Map<string, Promise<SelfSignedCertificate>>();

/** Creates (or reuses) a self-signed certificate valid for the given names, for 2 days. */
export function createSelfSignedCertificate(names: CertificateNames = {}): Promise<SelfSignedCertificate> {
  const dnsNames = [...(names.dnsNames ?? ["hs.test"])];
  const ipAddresses = [...(names.ipAddresses ?? ["127.0.0.1"])];
  for (const d of dnsNames) if (!/^[A-Za-z0-9.*-]+$/.test(d)) throw new TypeError(`bad DNS name ${d}`);
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw new TypeError(`bad IP address ${ip}`);
  const key = JSON.stringify([dnsNames, ipAddresses]);
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = generate(dnsNames, ipAddresses);
    cache.set(key, pending);
    pending.catch(() => cache.delete(key));
  }
  return pending;
}

async function generate(dnsNames: string[], ipAddresses: string[]): Promise<SelfSignedCertificate> {
  const dir = await mkdtemp(join(tmpdir(), "seraph-tls-"));
  try {
    const san = [...dnsNames.map((d) => `DNS:${d}`), ...ipAddresses.map((ip) => `IP:${ip}`)].join(",");
    const cn = dnsNames[0] ?? ipAddresses[0] ?? "localhost";
    const keyPath = join(dir, "key.pem");
    const certPath = join(dir, "cert.pem");
    await run("/usr/bin/openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "2",
      "-subj",
      `/CN=${cn}`,
      ...(san ? ["-addext", `subjectAltName=${san}`] : []),
    ]);
    const [key, cert] = await Promise.all([readFile(keyPath, "utf8"), readFile(certPath, "utf8")]);
    return { key, cert };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
