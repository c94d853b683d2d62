/**
 * The ceiling: a bare `node:http` server answering every request with a constant JSON body of the
 * size of `GET /v2/pubkey/...` (no routing, no logging, no validation). With `--workers N` it runs N
 * node:cluster workers on one listener, like `seraph serve --workers N`.
 *
 *   node bench/bare-server.mjs --port 8099 [--workers N|auto]
 *
 * Plain JavaScript, run without tsx, so that its memory is that of a bare Node process.
 */
import cluster from "node:cluster";
import { createServer } from "node:http";
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { port: { type: "string", default: "0" }, workers: { type: "string", default: "1" } },
});
const workers = values.workers === "auto" ? availableParallelism() : Number(values.workers);
const port = Number(values.port);
const BODY = Buffer.from(JSON.stringify({ public_key: "A".repeat(43) }));
const HEADERS = { "content-type": "application/json", "content-length": String(BODY.length) };

function serve() {
  const server = createServer((req, res) => {
    // Drain the request body (if any) before answering, as any real server would.
    req.resume();
    res.writeHead(200, HEADERS).end(BODY);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(port, "127.0.0.1", () => {
    const addr = server.address();
    const bound = typeof addr === "object" && addr ? addr.port : port;
    if (cluster.isWorker) process.send?.({ listening: bound });
    else process.stdout.write(`bare node:http listening on http://127.0.0.1:${bound}\n`);
  });
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
}

if (workers > 1 && cluster.isPrimary) {
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    const w = cluster.fork();
    w.on("message", (m) => {
      if (m?.listening !== undefined && ++ready === workers) {
        process.stdout.write(
          `bare node:http listening on http://127.0.0.1:${m.listening} (${workers} workers)\n`,
        );
      }
    });
  }
  process.on("SIGTERM", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill("SIGTERM");
    cluster.disconnect(() => process.exit(0));
  });
} else {
  serve();
}
