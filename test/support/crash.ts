import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { latestSmsCode } from "./fake-sms.js";
import { spawnSeraph } from "./process.js";
import { call, testDatabase } from "./seraph.js";

const V1 = "/_matrix/identity/api/v1";

export interface CrashResult {
  /** Binds answered 200 before the kill. */
  acknowledged: number;
  /** Of those, how many the restarted server still has (v1 lookup gives the same mxid). */
  present: number;
  missing: string[];
}

/**
 * Runs validate→bind cycles (msisdn requestToken, submitToken with the code from the SMS outbox, v1 bind) on a
 * real `seraph serve` process from `workers` clients at once, kills it with SIGKILL once `killAfter` binds were
 * acknowledged (others are in flight), restarts it on the same database, and checks every acknowledged bind.
 */
export async function crashDuringBinds(opts: { killAfter: number; workers?: number }): Promise<CrashResult> {
  const dir = mkdtempSync(join(tmpdir(), "seraph-crash-"));
  const smsDir = join(dir, "sms");
  const config = {
    server_name: "is.test",
    database: await testDatabase(dir),
    signing_key_path: join(dir, "signing.key"),
    email: { outbox_dir: join(dir, "outbox"), from: "Seraph <noreply@is.test>" },
    sms: { provider: "log", outbox_dir: smsDir },
    v1: { enable_bind: true },
    rate_limit: { enabled: false },
  };
  const proc = await spawnSeraph(config, dir, 120_000);
  const acknowledged = new Map<string, string>();
  let next = 0;
  let killed = false;

  async function cycle(i: number): Promise<void> {
    const national = `07911${String(100000 + i).padStart(6, "0")}`;
    const msisdn = `44${national.slice(1)}`;
    const secret = `crash-secret-${i}`;
    const req = await call(`${proc.url}${V1}/validate/msisdn/requestToken`, {
      body: { client_secret: secret, country: "GB", phone_number: national, send_attempt: 1 },
    });
    if (req.status !== 200) throw new Error(`requestToken ${req.status} ${req.text}`);
    const sid = req.body.sid as string;
    const code = await latestSmsCode(smsDir, `+${msisdn}`);
    if (!code) throw new Error("no SMS code");
    const sub = await call(`${proc.url}${V1}/validate/msisdn/submitToken`, {
      body: { sid, client_secret: secret, token: code },
    });
    if (sub.status !== 200) throw new Error(`submitToken ${sub.status}`);
    const mxid = `@crash${i}:hs.test`;
    const bind = await call(`${proc.url}${V1}/3pid/bind`, { body: { sid, client_secret: secret, mxid } });
    if (bind.status === 200) acknowledged.set(msisdn, mxid);
  }

  await Promise.all(
    Array.from({ length: opts.workers ?? 4 }, async () => {
      while (!killed) {
        const i = next++;
        try {
          await cycle(i);
        } catch {
          if (killed) return; // the request in flight when the process died
        }
        if (!killed && acknowledged.size >= opts.killAfter) {
          killed = true;
          proc.kill("SIGKILL");
        }
      }
    }),
  );
  await proc.exited;

  const restarted = await spawnSeraph(config, dir, 120_000);
  try {
    const missing: string[] = [];
    for (const [msisdn, mxid] of acknowledged) {
      const res = await call(`${restarted.url}${V1}/lookup?medium=msisdn&address=${msisdn}`);
      if (res.body.mxid !== mxid) missing.push(msisdn);
    }
    return { acknowledged: acknowledged.size, present: acknowledged.size - missing.length, missing };
  } finally {
    restarted.kill("SIGTERM");
    await restarted.exited;
  }
}
