/**
 * A minimal SMTP server for the mail scenarios: accepts every message and counts it, without parsing
 * (the test suite's sink parses each mail, which would take the CPU the benchmark measures).
 */
import { SMTPServer } from "smtp-server";

export interface BenchSink {
  readonly port: number;
  /** Messages accepted so far. */
  count(): number;
  close(): Promise<void>;
}

export async function startBenchSink(): Promise<BenchSink> {
  let messages = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    size: 1_000_000,
    onData(stream, _session, done) {
      stream.on("data", () => undefined);
      stream.on("end", () => {
        messages++;
        done();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.server.address();
  if (address === null || typeof address === "string") throw new Error("the SMTP sink has no port");
  return {
    port: address.port,
    count: () => messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
