import { createServer, type Server } from "node:http";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser } from "../support/browser.js";
import { V1 } from "../support/paths.js";
import { call, freePort, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

let browser: Browser;
let sink: SmtpSink;
let is: TestSeraph;
let app: Server;
let appUrl: string;

beforeAll(async () => {
  browser = await launchBrowser();
  sink = await startSmtpSink();
  // A stand-in for the web client the user returns to after validating.
  const appPort = await freePort();
  appUrl = `http://localhost:${appPort}`;
  app = createServer((_req, res) =>
    res.writeHead(200, { "content-type": "text/html" }).end("<h1 id=done>Back in the app</h1>"),
  );
  await new Promise<void>((r) => app.listen(appPort, "127.0.0.1", () => r()));
  is = await startSeraph({
    email: { smtp: { host: sink.host, port: sink.port, tls: "none" } },
    validation: { next_link_allowlist: ["localhost"] },
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await is?.close();
  await sink?.close();
  await new Promise((r) => app?.close(r));
});

/** Requests a validation email and returns the link it holds, as a person would find it. */
async function mailedLink(email: string, nextLink?: string): Promise<string> {
  sink.clear();
  const res = await call(`${is.url}${V1}/validate/email/requestToken`, {
    body: {
      client_secret: `s-${email.replace(/[^a-z]/g, "")}`,
      email,
      send_attempt: 1,
      ...(nextLink ? { next_link: nextLink } : {}),
    },
  });
  expect(res.status).toBe(200);
  const [mail] = await sink.waitForMessages(1);
  const link = /https?:\/\/\S+submitToken\?\S+/.exec(mail!.parsed.text ?? "")?.[0];
  if (!link) throw new Error("no link in the mail");
  return link;
}

describe("the validation link in a real browser", () => {
  it("shows the verified page", async () => {
    const page = await browser.newPage();
    await page.goto(await mailedLink("browser@example.org"));
    await expect.poll(() => page.locator("h1").textContent()).toBe("Email address verified");
    await page.close();
  });

  it("follows an allowed next_link back to the app", async () => {
    const page = await browser.newPage();
    await page.goto(await mailedLink("redirect@example.org", `${appUrl}/#/validated`));
    await page.waitForURL(`${appUrl}/#/validated`);
    expect(await page.locator("#done").textContent()).toBe("Back in the app");
    await page.close();
  });

  it("shows a failure page for a tampered link", async () => {
    const page = await browser.newPage();
    const link = new URL(await mailedLink("tampered@example.org"));
    link.searchParams.set("token", "wrong");
    const response = await page.goto(link.toString());
    expect(response?.status()).toBe(400);
    await expect.poll(() => page.locator("h1").textContent()).toBe("Verification failed");
    await page.close();
  });
});
