import { lookupHash } from "../threepid/normalise.js";
import { type Counters, pickBinding } from "./mapping.js";
import type { SydentConfig } from "./sydent-config.js";
import type { SydentDb, SydentGlobalRow } from "./sydent-db.js";

type Json = Record<string, unknown>;

interface Recorded {
  status: number;
  raw: string;
  parsed: unknown;
}

/**
 * Asks a live sydent (`--verify --against URL`) the questions the fixture's expected.json records, built
 * from sydent's own database: v1 lookup of the first `limit` bindings (and upper-case probes), bulk_lookup,
 * v2 sha256 and none lookups under sydent's pepper, pubkey, isvalid of the ephemeral keys, and
 * GET /v2/account with each token. Returns them in expected.json's shape, for RecordedVerifier.
 */
export async function recordFromLive(
  db: SydentDb,
  conf: SydentConfig,
  baseUrl: string,
  opts: { limit: number; now: number; importPeers: boolean },
): Promise<Json> {
  const base = baseUrl.replace(/\/+$/, "");
  const ask = async (
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<Recorded> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const raw = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    return { status: res.status, raw, parsed };
  };
  const v1 = "/_matrix/identity/api/v1";
  const v2 = "/_matrix/identity/v2";
  const q = (p: Record<string, string>) => new URLSearchParams(p).toString();
  const pepper = db.pepper();
  const publicKey = conf.signingKey.publicKeyBase64;
  const unknownKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  const a: Json = {};

  a.versions = await ask("GET", "/_matrix/identity/versions");
  a.v2_status = await ask("GET", v2);
  a.v1_pubkey_ed25519_0 = await ask("GET", `${v1}/pubkey/ed25519:0`);
  a.v2_pubkey_ed25519_0 = await ask("GET", `${v2}/pubkey/ed25519:0`);
  a.v1_pubkey_isvalid = {
    long_term_key: {
      public_key: publicKey,
      ...(await ask("GET", `${v1}/pubkey/isvalid?${q({ public_key: publicKey })}`)),
    },
    wrong_key: {
      public_key: unknownKey,
      ...(await ask("GET", `${v1}/pubkey/isvalid?${q({ public_key: unknownKey })}`)),
    },
  };
  a.v2_pubkey_isvalid_long_term_key = await ask(
    "GET",
    `${v2}/pubkey/isvalid?${q({ public_key: publicKey })}`,
  );
  const keys: Json[] = [];
  for (const k of db.ephemeralKeys(0)) {
    if (keys.length >= opts.limit) break;
    keys.push({
      public_key: k.public_key,
      address: `ephemeral key ${k.id}`,
      ...(await ask("GET", `${v1}/pubkey/ephemeral/isvalid?${q({ public_key: k.public_key })}`)),
    });
  }
  a.v1_ephemeral_isvalid = keys;
  a.v1_ephemeral_isvalid_unknown_key = await ask(
    "GET",
    `${v1}/pubkey/ephemeral/isvalid?${q({ public_key: unknownKey })}`,
  );
  a.v2_terms = await ask("GET", `${v2}/terms`);

  // The bindings Seraph imported (the same rule), first `limit` of them.
  const bindings: Array<{ medium: string; address: string; mxid: string }> = [];
  const counters: Counters = {};
  const rules = { ownServer: conf.serverName, importPeers: opts.importPeers, now: opts.now };
  let group: SydentGlobalRow[] = [];
  const take = () => {
    const b = group.length ? pickBinding(group, rules, counters) : undefined;
    if (b) bindings.push({ medium: b.medium, address: b.address, mxid: b.mxid });
    group = [];
  };
  for (const row of db.globalAssociations(["", ""])) {
    const last = group[group.length - 1];
    if (last && (last.medium !== row.medium || last.address !== row.address)) take();
    if (bindings.length >= opts.limit) break;
    group.push(row);
  }
  if (bindings.length < opts.limit) take();
  const lookups: Json[] = [];
  const withInvites: Json[] = [];
  for (const b of bindings) {
    const r = await ask("GET", `${v1}/lookup?${q({ medium: b.medium, address: b.address })}`);
    lookups.push({ ...b, ...r });
    if (typeof r.parsed === "object" && r.parsed !== null && "invites" in r.parsed) {
      withInvites.push({ medium: b.medium, address: b.address });
    }
  }
  a.v1_lookup = lookups;
  const probes: Json[] = [];
  for (const b of bindings.filter((x) => x.medium === "email").slice(0, 20)) {
    const query = b.address.toUpperCase();
    if (query === b.address) continue;
    const r = await ask("GET", `${v1}/lookup?${q({ medium: "email", address: query })}`);
    probes.push({ query_address: query, stored_address: b.address, case: "upper", mxid: b.mxid, ...r });
  }
  a.v1_lookup_case_probes = probes;
  const bulk = bindings.slice(0, 1000).map((b) => [b.medium, b.address]);
  a.v1_bulk_lookup = {
    request: { threepids: bulk },
    ...(await ask("POST", `${v1}/bulk_lookup`, { threepids: bulk })),
  };

  // Accounts: every token (up to the limit), and one whose user accepted the terms for the v2 lookups.
  const hashes = bindings.slice(0, 1000).map((b) => lookupHash(b.address, b.medium, pepper));
  const small = { addresses: hashes.slice(0, 2), algorithm: "sha256", pepper };
  const accounts: Json[] = [];
  let accepted: string | undefined;
  for (const t of db.tokens("")) {
    if (accounts.length >= opts.limit) break;
    const details = await ask("GET", `${v2}/hash_details`, undefined, t.token);
    if (details.status === 200) accepted ??= t.token;
    accounts.push({
      user_id: t.user_id,
      token: t.token,
      all_terms_accepted: details.status === 200,
      get_account: await ask("GET", `${v2}/account`, undefined, t.token),
      v2_lookup: { request: small, ...(await ask("POST", `${v2}/lookup`, small, t.token)) },
      v2_hash_details: details,
    });
  }
  a.accounts = accounts;
  if (accepted) {
    a.v2_hash_details = await ask("GET", `${v2}/hash_details`, undefined, accepted);
    const sha = { addresses: hashes, algorithm: "sha256", pepper };
    a.v2_lookup_sha256 = { request: sha, ...(await ask("POST", `${v2}/lookup`, sha, accepted)) };
    const none = {
      addresses: bindings.slice(0, 1000).map((b) => `${b.address} ${b.medium}`),
      algorithm: "none",
      pepper,
    };
    a.v2_lookup_none = { request: none, ...(await ask("POST", `${v2}/lookup`, none, accepted)) };
    a.v2_lookup_wrong_pepper = await ask(
      "POST",
      `${v2}/lookup`,
      { addresses: [], algorithm: "sha256", pepper: "wrong pepper" },
      accepted,
    );
  }
  a.no_token = {
    get_account: await ask("GET", `${v2}/account`),
    v2_lookup: await ask("POST", `${v2}/lookup`, { addresses: [], algorithm: "sha256", pepper: "x" }),
  };
  return { answers: a, sgassoc_with_invites: withInvites };
}
