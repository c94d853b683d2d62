/** Command-line options of `npm run bench` (bench/run.ts). */
import { parseArgs } from "node:util";

export interface Args {
  backend: "sqlite" | "postgres";
  associations: number;
  scenarios: string[];
  duration: number;
  warmup: number;
  connections: number;
  instances: number;
  /** `server.workers` of each instance: a number, or "auto". */
  workers: number | "auto";
  samples: number;
  poolSize: number;
  explain: boolean;
  /** Also measure a bare `node:http` server (the ceiling) in the same run. */
  ceiling: boolean;
  pgUrl: string | undefined;
  quietWaitMs: number;
  maxOther: number;
  attempts: number;
  maxSlowdown: number;
  /** Extra flags for the server processes' node, e.g. --max-semi-space-size=64. */
  nodeOptions: string[];
  /** Servers on CPU 0, the load generator on CPU 1 (taskset). */
  pin: boolean;
  /** Run the compiled server (`node dist/main.js`, what the `seraph` bin runs) instead of src/ under tsx. */
  built: boolean;
  /** How many times the whole scenario list runs, the bare server first in each round. */
  rounds: number;
  /** Rate limits on, every budget far above what a run sends: the cost of the checks, with no refusal. */
  rateLimits: boolean;
}

export const HELP = `npm run bench -- [options]
  --backend sqlite|postgres   database (default sqlite; postgres starts an embedded cluster)
  --associations N            associations to seed (default 100000)
  --scenario LIST             comma-separated, run in order on the same servers (default pubkey):
                                pubkey      GET /v2/pubkey/ed25519:0
                                isvalid     GET /v2/pubkey/isvalid (long-term key, in memory)
                                versions    GET /_matrix/identity/versions
                                status      GET /_matrix/identity/v2
                                ephemeral   GET /v2/pubkey/ephemeral/isvalid (a database write)
                                account     GET /v2/account with a Bearer token
                                v1lookup    GET /api/v1/lookup (one signed association)
                                lookupN     POST /v2/lookup with N sha256 hashes (lookup100, lookup1000)
                                latencyN    N-hash lookups sent one at a time (--samples of them)
                                storeinvite POST /v2/store-invite, a new address each time (an invite
                                            row, an ephemeral key, a mail to a local SMTP sink)
                                requesttoken POST /v2/validate/email/requestToken, a new address
                                            each time (a session row, a mail to the SMTP sink)
                                bare        a bare node:http server answering a constant JSON body
                                            (run first by default, see --no-ceiling)
  --no-ceiling                do not measure the bare node:http server; without it, every load
                              row gets its ratio to the bare server's rate
  --duration S                measured seconds per load run (default 10), after every connection
                              has had an answer and then --warmup S more (default 2)
  --connections C             autocannon connections (default 50), spread over the instances
  --instances K               Seraph processes on the same database (default 1)
  --workers N|auto            server.workers of each instance (default 1: one process, as before
                              workers existed); the bare server runs as many node:cluster workers
  --samples M                 requests measured by latencyN (default 50)
  --pool-size P               PostgreSQL pool size per instance (default 10)
  --explain                   print the plan and the in-process cost of the lookup query
  --pg-url URL                superuser URL of an existing PostgreSQL server (default: embedded)
  --quiet-wait S              before each run, wait up to S seconds (default 60) for other processes
                              to leave the machine idle (at most --max-other cores busy)
  --pin                       run the servers on CPU 0 and the load generator on CPU 1 (Linux taskset):
                              no run shares a core by chance; for one process (--workers 1)
  --built                     run the compiled server (node dist/main.js, what the seraph bin and
                              npm start run; built first if stale) instead of src/ under tsx,
                              whose loader thread adds memory a deployment does not have
  --rounds N                  run the scenario list N times on the same servers (default 1), the bare
                              server first in each round unless listed elsewhere: each row is compared
                              with its own round's bare row, and a table after the load rows gives
                              every load scenario's median over the rounds
  --rate-limits               rate limits on (default off), every limit and budget set far above
                              what a run sends: measures what the checks cost, without refusals
  --node-options=FLAGS        extra node flags for the servers (e.g. --node-options=--max-semi-space-size=64)
  --max-other C               a run during which other processes used more than C cores (default
                              0.25), or whose CPU probe was more than --max-slowdown F (default 0.15)
                              slower than the fastest probe so far, is repeated, up to --attempts
                              times (default 3); the least disturbed one is kept (⚠: other processes)
`;

const SCENARIO =
  /^(pubkey|isvalid|versions|status|ephemeral|account|v1lookup|storeinvite|requesttoken|bare|lookup\d+|latency\d+)$/;

/** Scenarios that send mail (the benchmark then starts a local SMTP sink). */
export const MAIL_SCENARIOS = ["storeinvite", "requesttoken"];
export function parse(argv: string[] = process.argv.slice(2)): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: "string", default: "sqlite" },
      associations: { type: "string", default: "100000" },
      scenario: { type: "string", default: "pubkey" },
      duration: { type: "string", default: "10" },
      warmup: { type: "string", default: "2" },
      connections: { type: "string", default: "50" },
      instances: { type: "string", default: "1" },
      workers: { type: "string", default: "1" },
      samples: { type: "string", default: "50" },
      "pool-size": { type: "string", default: "10" },
      explain: { type: "boolean", default: false },
      "no-ceiling": { type: "boolean", default: false },
      "pg-url": { type: "string" },
      "quiet-wait": { type: "string", default: "60" },
      "max-other": { type: "string", default: "0.25" },
      attempts: { type: "string", default: "3" },
      "max-slowdown": { type: "string", default: "0.15" },
      "node-options": { type: "string" },
      pin: { type: "boolean", default: false },
      built: { type: "boolean", default: false },
      rounds: { type: "string", default: "1" },
      "rate-limits": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const positive = (name: string, v: string) => {
    const n = Number(v);
    if (!(n >= 0)) throw new Error(`--${name} must be a number >= 0`);
    return n;
  };
  if (values.backend !== "sqlite" && values.backend !== "postgres") {
    throw new Error("--backend must be sqlite or postgres");
  }
  const scenarios = values.scenario
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of scenarios) {
    if (!SCENARIO.test(s)) throw new Error(`unknown scenario ${s}\n\n${HELP}`);
  }
  // The ceiling runs first, so that every later row can be compared with it.
  if (!values["no-ceiling"] && !scenarios.includes("bare")) scenarios.unshift("bare");
  const workers = values.workers === "auto" ? ("auto" as const) : int("workers", values.workers, 1);
  return {
    backend: values.backend,
    associations: int("associations", values.associations, 1),
    scenarios,
    duration: int("duration", values.duration, 1),
    warmup: int("warmup", values.warmup, 0),
    connections: int("connections", values.connections, 1),
    instances: int("instances", values.instances, 1),
    workers,
    samples: int("samples", values.samples, 1),
    poolSize: int("pool-size", values["pool-size"], 1),
    explain: values.explain,
    ceiling: scenarios.includes("bare"),
    pgUrl: values["pg-url"],
    quietWaitMs: int("quiet-wait", values["quiet-wait"], 0) * 1000,
    maxOther: positive("max-other", values["max-other"]),
    attempts: int("attempts", values.attempts, 1),
    maxSlowdown: positive("max-slowdown", values["max-slowdown"]),
    nodeOptions: (values["node-options"] ?? "").split(/\s+/).filter(Boolean),
    pin: values.pin,
    built: values.built,
    rounds: int("rounds", values.rounds, 1),
    rateLimits: values["rate-limits"],
  };
}
