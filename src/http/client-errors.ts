import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/**
 * Answers what Node's HTTP parser refuses before fastify sees a request (a body that took too long, headers
 * too large, a malformed request line) with a Matrix error body, then closes the connection. Replaces
 * fastify's default, whose body is not a Matrix error.
 */
export function matrixClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, errcode, message] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "M_UNKNOWN", "Request timed out"]
      : err.code === "HPE_HEADER_OVERFLOW"
        ? [431, "M_TOO_LARGE", "Request headers too large"]
        : [400, "M_UNKNOWN", "Malformed request"];
  const body = JSON.stringify({ errcode, error: message });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
