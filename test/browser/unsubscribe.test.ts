import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser } from "../support/browser.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

const V1 = "/_matrix/identity/api/v1";

let browser: Browser;
let sink: SmtpSink;
let is: TestSeraph;

beforeAll(async () => {
  browser = await launchBrowser();
  sink = await startSmtpSink();
  is = await startSeraph({ email: { smtp: { host: sink.host, port: sink.port, tls: "none" } } });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await is?.close();
  await sink?.close();
});

const invite = (address: string) =>
  call(`${is.url}${V1}/store-invite`, {
    body: { medium: "email", address, room_id: "!room:hs.test", sender: "@bob:hs.test" },
  });

/** Invites `address` and returns the unsubscribe link of the email, and the email. */
async function invitedLink(address: string) {
  expect((await invite(address)).status).toBe(200);
  let mail: (typeof sink.messages)[number] | undefined;
  await expect
    .poll(() => {
      mail = sink.messages.find((m) => m.envelope.to.includes(address));
      return mail !== undefined;
    })
    .toBe(true);
  const link = /(https?:\/\/\S+\/_seraph\/unsubscribe\?\S+)/.exec(mail!.parsed.text ?? "")?.[1];
  if (!link) throw new Error("no unsubscribe link in the mail");
  return { link, mail: mail! };
}

describe("the unsubscribe link of an invite email", () => {
  it("has the List-Unsubscribe headers and no address in the link", async () => {
    const { link, mail } = await invitedLink("headers@example.org");
    const headers = mail.headerBlock.replace(/\r?\n[ \t]+/g, " ");
    expect(/^List-Unsubscribe: (.*)$/im.exec(headers)?.[1]?.replace(/\s+/g, "")).toBe(`<${link}>`);
    expect(headers).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$/im);
    expect(link).not.toContain("headers");
    expect(mail.parsed.html).toContain("/_seraph/unsubscribe?");
  });

  it("stops invitations with one button in a real browser; the next store-invite is refused", async () => {
    const address = "browser.unsub@example.org";
    const { link } = await invitedLink(address);
    const page = await browser.newPage();
    await page.goto(link);
    await expect.poll(() => page.locator("h1").textContent()).toBe("Stop invitations");
    expect(await page.locator("strong").textContent()).toBe("bro...@exa...");
    await page.locator("#unsubscribe").click();
    await expect.poll(() => page.locator("h1").textContent()).toBe("You will not be invited again");
    await page.close();

    const before = sink.messages.length;
    const again = await invite(address);
    expect(again.status).toBe(403);
    expect(again.body.errcode).toBe("M_FORBIDDEN");
    // A later mail to someone else arrives alone: none was sent to the suppressed address.
    await invitedLink("someone.else@example.org");
    expect(sink.messages.slice(before).map((m) => m.envelope.to)).toEqual([["someone.else@example.org"]]);
  });

  it("accepts a mail client's one-click POST and refuses a tampered link", async () => {
    const { link } = await invitedLink("oneclick@example.org");
    const res = await fetch(link, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "List-Unsubscribe=One-Click",
    });
    expect(res.status).toBe(200);
    expect((await invite("oneclick@example.org")).status).toBe(403);

    const tampered = new URL((await invitedLink("tamper@example.org")).link);
    tampered.searchParams.set("h", "0".repeat(64));
    const page = await browser.newPage();
    const response = await page.goto(tampered.toString());
    expect(response?.status()).toBe(400);
    await expect.poll(() => page.locator("h1").textContent()).toBe("This link is not valid");
    await page.close();
    expect((await invite("tamper@example.org")).status).toBe(200);
  });
});
