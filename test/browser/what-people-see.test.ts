/**
 * Every page and the HTML part of every email, as a person sees them in Chromium: in each shipped
 * language, at desktop and phone widths. Screenshots go to test-output/screenshots/ (gitignored).
 * Checks: the right language, no template placeholders or error codes, the brand's name, `lang` set,
 * one h1, text contrast >= 4.5:1 (computed here from the rendered colours), every link and button
 * reachable with the keyboard, nothing wider than the screen.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { sql } from "kysely";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser } from "../support/browser.js";
import { call, startSeraph, type TestSeraph } from "../support/seraph.js";
import { type SmtpSink, startSmtpSink } from "../support/smtp-sink.js";

const V1 = "/_matrix/identity/api/v1";
const ROOT = resolve(import.meta.dirname, "..", "..");
const SHOTS = join(ROOT, "test-output", "screenshots");
const LANGS = ["en", "fr", "de", "es"] as const;
type Lang = (typeof LANGS)[number];
const WIDTHS = [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
] as const;
const catalogue = (lang: Lang) =>
  JSON.parse(readFileSync(join(ROOT, "templates", "locales", `${lang}.json`), "utf8")) as Record<
    string,
    string | Record<string, string>
  >;
const msg = (lang: Lang, key: string) => {
  const m = catalogue(lang)[key];
  if (typeof m !== "string") throw new Error(`${lang} ${key} is not a plain message`);
  return m;
};

let browser: Browser;
let page: Page;
let sink: SmtpSink;
let is: TestSeraph;
let clock = Date.parse("2026-06-01T12:00:00Z");

beforeAll(async () => {
  browser = await launchBrowser();
  page = await browser.newPage();
  sink = await startSmtpSink();
  is = await startSeraph(
    { email: { smtp: { host: sink.host, port: sink.port, tls: "none" } } },
    { now: () => clock },
  );
  // "Database down" below holds SQLite's write lock from another connection; wait briefly for it.
  await sql`pragma busy_timeout = 50`.execute(is.seraph.store.db);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await is?.close();
  await sink?.close();
});

let n = 0;
async function mailFor(lang: Lang, extra: Record<string, unknown> = {}) {
  const email = `person${++n}@example.org`;
  const res = await call(`${is.url}${V1}/validate/email/requestToken`, {
    body: { client_secret: `secret${n}`, email, send_attempt: 1, lang, ...extra },
  });
  expect(res.status, res.text).toBe(200);
  await expect.poll(() => sink.messages.some((m) => m.envelope.to.includes(email))).toBe(true);
  const mail = sink.messages.find((m) => m.envelope.to.includes(email))!;
  const link = /https?:\/\/\S+submitToken\?\S+/.exec(mail.parsed.text ?? "")?.[0];
  if (!link) throw new Error("no link in the mail");
  return { link, mail, sid: String(res.body.sid), clientSecret: `secret${n}` };
}

const withParam = (link: string, name: string, value: string | null) => {
  const u = new URL(link);
  if (value === null) u.searchParams.delete(name);
  else u.searchParams.set(name, value);
  return u.toString();
};

interface Look {
  lang: string;
  h1s: string[];
  text: string;
  worstContrast: { ratio: number; text: string; colour: string; background: string };
  overflow: boolean;
  focusables: number;
}

/**
 * What the rendered document shows, measured in the page by Playwright (our pages run no scripts).
 * Written as a string: it runs in the browser, where the DOM exists.
 */
const LOOK_SCRIPT = `(() => {
  const parse = (c) => {
    const m = /rgba?\\(([\\d.]+),\\s*([\\d.]+),\\s*([\\d.]+)(?:,\\s*([\\d.]+))?\\)/.exec(c);
    return m ? { r: +m[1], g: +m[2], b: +m[3], a: m[4] === undefined ? 1 : +m[4] } : undefined;
  };
  const lum = (c) => {
    const f = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const bg = getComputedStyle(e).backgroundColor;
      const c = parse(bg);
      if (c && c.a > 0) return bg;
    }
    return "rgb(255, 255, 255)";
  };
  let worst = { ratio: 99, text: "", colour: "", background: "" };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = (node.textContent || "").trim();
    const el = node.parentElement;
    if (!text || !el || el.getClientRects().length === 0) continue;
    const fg = getComputedStyle(el).color;
    const bg = background(el);
    const a = parse(fg), b = parse(bg);
    if (!a || !b) continue;
    const l1 = lum(a), l2 = lum(b);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < worst.ratio) worst = { ratio, text, colour: fg, background: bg };
  }
  return {
    lang: document.documentElement.lang,
    h1s: [...document.querySelectorAll("h1")].map((h) => (h.textContent || "").trim()),
    text: document.body.innerText,
    worstContrast: worst,
    overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
    focusables: document.querySelectorAll("a[href], button, input:not([type=hidden])").length,
  };
})()`;

const FOCUSED_SCRIPT = `(() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "";
  return String([...document.querySelectorAll("a[href], button, input:not([type=hidden])")].indexOf(el));
})()`;

async function look(p: Page): Promise<Look> {
  return (await p.evaluate(LOOK_SCRIPT)) as Look;
}

/** Tabs through the document; returns how many distinct links and buttons got the focus. */
async function tabThrough(p: Page, count: number): Promise<number> {
  const seen = new Set<string>();
  await p.locator("body").focus();
  for (let i = 0; i < count + 2; i++) {
    await p.keyboard.press("Tab");
    const id = (await p.evaluate(FOCUSED_SCRIPT)) as string;
    if (id !== "" && id !== "-1") seen.add(id);
  }
  return seen.size;
}

/** The checks every page and mail gets, at every width, with a screenshot. */
async function checkAsAPerson(lang: Lang, name: string, title: string, brand = "matrix.org") {
  // A verification email shows its link (with sid and client_secret) for copying; pages show none.
  const isMail = name.startsWith("mail-");
  for (const w of WIDTHS) {
    await page.setViewportSize({ width: w.width, height: w.height });
    mkdirSync(join(SHOTS, lang), { recursive: true });
    await page.screenshot({ path: join(SHOTS, lang, `${name}-${w.name}.png`), fullPage: true });
    const seen = await look(page);
    const where = `${lang} ${name} ${w.name}`;
    expect(seen.lang, where).toBe(lang);
    expect(seen.h1s, where).toEqual([title]);
    expect(seen.text, where).toContain(brand);
    expect(seen.text, where).not.toMatch(/<%|%>|\{[a-z_]+\}|%\([a-z_]+\)s|\bundefined\b|\bnull\b|\bNaN\b/);
    expect(seen.text, where).not.toMatch(/\bM_[A-Z_]+\b/);
    if (!isMail) expect(seen.text, where).not.toMatch(/client_secret|\bsid\b|\btoken\b/);
    expect(
      seen.worstContrast.ratio,
      `${where}: ${JSON.stringify(seen.worstContrast)}`,
    ).toBeGreaterThanOrEqual(4.5);
    expect(seen.overflow, `${where} is wider than the screen`).toBe(false);
  }
  // After the screenshots, so that none shows a focus ring.
  const { focusables } = await look(page);
  expect(await tabThrough(page, focusables), `${lang} ${name}: keyboard`).toBe(focusables);
}

describe("what people see, in every shipped language", () => {
  it("renders every page and the HTML part of every email", async () => {
    // Sessions that will have expired: made before the clock moves a day on.
    const expired = new Map<Lang, string>();
    for (const lang of LANGS) expired.set(lang, (await mailFor(lang)).link);
    clock += 25 * 3600_000;

    for (const lang of LANGS) {
      await page.setExtraHTTPHeaders({ "accept-language": `${lang};q=1` });
      const verify = await mailFor(lang);

      // The verification email's HTML part, then the invite's.
      await page.setContent(verify.mail.parsed.html || "");
      await checkAsAPerson(lang, "mail-verification", msg(lang, "verification.title"));
      sink.clear();
      const inv = await call(`${is.url}${V1}/store-invite`, {
        body: {
          medium: "email",
          address: `invitee-${lang}@example.org`,
          room_id: "!room:hs.test",
          room_name: "Garden",
          sender: "@bob:hs.test",
          sender_display_name: "Bob",
          lang,
        },
      });
      expect(inv.status, inv.text).toBe(200);
      await expect.poll(() => sink.messages.length).toBe(1);
      await page.setContent(sink.messages[0]!.parsed.html || "");
      await checkAsAPerson(lang, "mail-invite", msg(lang, "invite.title"));

      const open = async (url: string, status: number) => {
        const res = await page.goto(url);
        expect(res?.status(), url).toBe(status);
        expect(res?.headers()["content-security-policy"]).toContain("default-src 'none'");
      };
      const wrong = withParam(verify.link, "token", "wrong");
      await open(wrong, 400);
      await checkAsAPerson(lang, "page-wrong-token", msg(lang, "page.wrong_token.title"));
      await open(verify.link, 200);
      await checkAsAPerson(lang, "page-success", msg(lang, "page.success.title_email"));
      await open(expired.get(lang)!, 400);
      await checkAsAPerson(lang, "page-expired", msg(lang, "page.expired.title"));
      const locked = await mailFor(lang);
      for (let i = 0; i < 5; i++) await open(withParam(locked.link, "token", `wrong${i}`), 400);
      await open(locked.link, 400);
      await checkAsAPerson(lang, "page-locked", msg(lang, "page.locked.title"));
      expect(await page.locator("p").first().textContent()).toBeTruthy();
      await open(withParam(verify.link, "sid", "unknown"), 400);
      await checkAsAPerson(lang, "page-unknown-session", msg(lang, "page.unknown_session.title"));
      await open(withParam(verify.link, "token", null), 400);
      await checkAsAPerson(lang, "page-incomplete-link", msg(lang, "page.incomplete.title"));

      // The database is locked by someone else: the person still gets a page, in their language.
      const down = await mailFor(lang);
      const other = new Database(join(is.dir, "seraph.db"));
      try {
        other.exec("BEGIN EXCLUSIVE");
        await open(down.link, 503);
        await checkAsAPerson(lang, "page-database-down", msg(lang, "page.unavailable.title"));
      } finally {
        other.exec("ROLLBACK");
        other.close();
      }
    }

    // The other shipped brand, with its own name and colour.
    await page.setExtraHTTPHeaders({ "accept-language": "en" });
    sink.clear();
    const res = await call(`${is.url}${V1}/validate/email/requestToken?brand=vector-im`, {
      body: { client_secret: "element-secret", email: "element@example.org", send_attempt: 1 },
    });
    expect(res.status).toBe(200);
    await expect
      .poll(() => sink.messages.some((m) => m.envelope.to.includes("element@example.org")))
      .toBe(true);
    const mail = sink.messages.find((m) => m.envelope.to.includes("element@example.org"))!;
    await page.setContent(mail.parsed.html || "");
    await checkAsAPerson("en", "mail-verification-vector-im", msg("en", "verification.title"), "Element");
    const link = /https?:\/\/\S+submitToken\?\S+/.exec(mail.parsed.text ?? "")?.[0] ?? "";
    await page.goto(link);
    await checkAsAPerson("en", "page-success-vector-im", msg("en", "page.success.title_email"), "Element");
  }, 300_000);
});

describe("validation.confirm_link_with_button in a browser (issue 9 item 9)", () => {
  let confirmIs: TestSeraph;
  beforeAll(async () => {
    confirmIs = await startSeraph({
      email: { smtp: { host: sink.host, port: sink.port, tls: "none" } },
      validation: { confirm_link_with_button: true },
    });
  });
  afterAll(async () => confirmIs?.close());

  it("opening the link validates nothing; pressing the button does", async () => {
    sink.clear();
    const res = await call(`${confirmIs.url}${V1}/validate/email/requestToken`, {
      body: { client_secret: "button-secret", email: "button@example.org", send_attempt: 1, lang: "fr" },
    });
    const sid = String(res.body.sid);
    const [mail] = await sink.waitForMessages(1);
    const link = /https?:\/\/\S+submitToken\?\S+/.exec(mail?.parsed.text ?? "")?.[0] ?? "";
    const validated = async () =>
      (await call(`${confirmIs.url}${V1}/3pid/getValidated3pid?sid=${sid}&client_secret=button-secret`))
        .status;

    await page.setExtraHTTPHeaders({ "accept-language": "de-DE,de;q=0.9" });
    await page.goto(link);
    await checkAsAPerson("de", "page-confirm", msg("de", "page.confirm.title_email"));
    expect(await validated()).toBe(400);
    expect(await page.locator("button").count()).toBe(1);

    // A person: Tab to the one button, press Enter.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(link);
    await page.keyboard.press("Tab");
    expect(await page.evaluate("document.activeElement && document.activeElement.tagName")).toBe("BUTTON");
    await Promise.all([page.waitForURL(/submitToken$/), page.keyboard.press("Enter")]);
    await expect.poll(() => page.locator("h1").textContent()).toBe(msg("de", "page.success.title_email"));
    expect(await validated()).toBe(200);
  });
});
