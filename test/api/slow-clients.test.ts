import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";

// A request whose headers are complete but whose body trickles in (CVE-2021-29430 class) must not hold a
// connection open: the whole request has http.request_timeout_seconds to arrive. And a process accepts
// at most http.max_connections at once.

interface Held {
  socket: Socket;
  /** Resolves with what the server wrote before closing, or "timeout" if it stays open past `boundMs`. */
  closed(boundMs: number): Promise<{ data: string } | "timeout">;
}

function hold(url: string, head: string): Promise<Held> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = "";
    let isClosed = false;
    const waiters: Array<() => void> = [];
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      data += d;
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      isClosed = true;
      for (const w of waiters) w();
    });
    socket.once("connect", () => {
      socket.write(head);
      resolve({
        socket,
        closed: (boundMs) =>
          new Promise((done) => {
            if (isClosed) return done({ data });
            const timer = setTimeout(() => done("timeout"), boundMs);
            waiters.push(() => {
              clearTimeout(timer);
              done({ data });
            });
          }),
      });
    });
    socket.once("error", reject);
  });
}

const slowBody = (path: string) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`;

describe("slow clients", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph({
      http: { request_timeout_seconds: 2, connection_timeout_seconds: 60, max_connections: 3 },
    });
  });
  afterAll(async () => is?.close());

  it("closes a connection whose body trickles in, once the request timeout has passed", async () => {
    const held = await hold(is.url, slowBody("/_matrix/identity/api/v1/store-invite"));
    // Keep trickling one byte a second: an idle timeout alone would never fire.
    const trickle = setInterval(() => {
      if (!held.socket.destroyed) held.socket.write(" ");
    }, 1000);
    try {
      // Limit 2 s; wait generously (no timing assertion beyond "closed well before 25 s").
      const result = await held.closed(25_000);
      expect(result).not.toBe("timeout");
      if (result !== "timeout") expect(result.data).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      clearInterval(trickle);
      held.socket.destroy();
    }
    // The server keeps serving.
    expect((await call(`${is.url}/_matrix/identity/v2`)).status).toBe(200);
  }, 40_000);
});

describe("connection cap", () => {
  let is: TestSeraph;
  beforeAll(async () => {
    is = await startSeraph({ http: { max_connections: 3 } });
  });
  afterAll(async () => is?.close());

  const get = "GET /_matrix/identity/v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

  it("accepts at most http.max_connections at once", async () => {
    const path = "/_matrix/identity/api/v1/store-invite";
    const holders = await Promise.all([1, 2, 3].map(() => hold(is.url, slowBody(path))));
    try {
      // Give the server a moment to accept the three held connections before the fourth arrives.
      await new Promise((r) => setTimeout(r, 300));
      const extra = await hold(is.url, get);
      const result = await extra.closed(15_000);
      expect(result).not.toBe("timeout");
      if (result !== "timeout") expect(result.data).toBe("");
    } finally {
      for (const h of holders) h.socket.destroy();
    }
    // Once they are gone, requests are served again (the close is seen by the server asynchronously).
    let answer = "";
    for (let i = 0; i < 50 && !answer.startsWith("HTTP/1.1 200"); i++) {
      const result = await (await hold(is.url, get)).closed(15_000);
      answer = result === "timeout" ? "" : result.data;
      if (!answer.startsWith("HTTP/1.1 200")) await new Promise((r) => setTimeout(r, 200));
    }
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  }, 40_000);
});
