import type { FastifyReply, FastifyRequest } from "fastify";
import { escapeHtml } from "../delivery/mime.js";
import { endpoint } from "../http/endpoint.js";
import type { InvitePolicy, UnsubscribeToken } from "./abuse.js";
import { UNSUBSCRIBE_PATH } from "./index.js";

function page(title: string, body: string): string {
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>` +
    `<style>body{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em}button{font-size:1.1em;padding:.5em 1em}</style>` +
    `</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`
  );
}

function tokenFrom(req: FastifyRequest): Partial<UnsubscribeToken> {
  const q = (typeof req.query === "object" && req.query !== null ? req.query : {}) as Record<string, unknown>;
  const pick = (k: string) => (typeof q[k] === "string" ? (q[k] as string) : undefined);
  return { h: pick("h"), m: pick("m"), r: pick("r"), e: pick("e"), s: pick("s") };
}

/**
 * The page an invite email's unsubscribe link opens: one button that puts the address on the suppression
 * list. `POST` to the same URL (the button, or a mail client's RFC 8058 one-click `List-Unsubscribe-Post`)
 * records it. The link carries only a keyed hash of the address, signed and expiring.
 */
export function unsubscribeEndpoints(policy: InvitePolicy) {
  const html = (reply: FastifyReply, status: number, text: string) =>
    reply
      .code(status)
      .header("content-type", "text/html; charset=utf-8")
      .header("cache-control", "no-store")
      .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
      .header("referrer-policy", "no-referrer")
      .send(text);

  const refuse = (reply: FastifyReply, state: "expired" | "invalid") =>
    html(
      reply,
      state === "expired" ? 410 : 400,
      page(
        state === "expired" ? "This link has expired" : "This link is not valid",
        "<p>Use the link in a more recent invitation email.</p>",
      ),
    );

  /** # `GET /_seraph/unsubscribe`: the page with one button. */
  const page_ = endpoint({
    async handle(req, reply) {
      const t = tokenFrom(req);
      const state = policy.verifyLink(t);
      if (state !== "ok") return refuse(reply, state);
      const action = `${UNSUBSCRIBE_PATH}?${new URLSearchParams(t as Record<string, string>).toString()}`;
      return html(
        reply,
        200,
        page(
          "Stop invitations",
          `<p>Do you want to stop receiving Matrix invitations at <strong>${escapeHtml(t.r!)}</strong> ` +
            "sent through this identity server?</p>" +
            `<form method="post" action="${escapeHtml(action)}"><button id="unsubscribe" type="submit">` +
            "Stop all invitations to this address</button></form>",
        ),
      );
    },
  });

  /** # `POST /_seraph/unsubscribe`: the button, or a mail client's one-click unsubscribe (RFC 8058). */
  const confirm = endpoint({
    async handle(req, reply) {
      const t = tokenFrom(req);
      const state = policy.verifyLink(t);
      if (state !== "ok") return refuse(reply, state);
      await policy.unsubscribe(t as UnsubscribeToken);
      return html(
        reply,
        200,
        page("You will not be invited again", "<p>No more invitations will be sent to this address.</p>"),
      );
    },
  });
  return { page: page_, confirm };
}
