/**
 * Email template loading and rendering (eta).
 *
 * Layout: `<templates_dir>/<brand>/<name>.*` where `<name>` is a {@link TemplateName}.
 *  - raw form: `<name>.eml`, a complete RFC 5322 message rendered without escaping (sydent style),
 *    with `<name>.subject.eta` optional (used for `subject_header_value`);
 *  - structured form: `<name>.subject.eta`, `<name>.txt.eta` and optionally `<name>.html.eta`;
 *    nodemailer builds the MIME message.
 * If `<name>.eml` exists it wins over the structured files: an operator who wrote a complete message
 * made an explicit choice, and silently ignoring it would be surprising.
 *
 * Templates are compiled once per file and cached for the life of the process (no reload); a failed
 * load is not cached, so a fixed file is picked up on the next send.
 */

import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Eta, type TemplateFunction } from "eta";
import {
  encodeHeaderText,
  escapeHtml,
  makeMessageId,
  randomBoundary,
  rfc2822Date,
  sanitizeHeaderText,
  stripLineBreaks,
  toWellFormed,
} from "./mime.js";

export type TemplateName = "invite" | "verification";

export const TEMPLATE_NAMES: readonly TemplateName[] = ["invite", "verification"];

export function isTemplateName(name: unknown): name is TemplateName {
  return typeof name === "string" && (TEMPLATE_NAMES as readonly string[]).includes(name);
}

/** Subject used for raw templates that come without a `<name>.subject.eta`. */
export const DEFAULT_SUBJECTS: Record<TemplateName, string> = {
  invite: "You have been invited to a room on Matrix",
  verification: "Confirm your email address for Matrix",
};

const BRAND_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * Picks the brand directory to use. `requested` is used only if it is a plain directory name
 * (`[A-Za-z0-9_.-]`, at most 100 characters, no `..`, not starting with a dot) that exists as a
 * directory directly under `templatesDir`; anything else falls back to `defaultBrand`.
 */
export function resolveBrand(
  templatesDir: string,
  requested: string | undefined,
  defaultBrand: string,
): string {
  return brandDirExists(templatesDir, requested) ? requested : defaultBrand;
}

/** True if `name` is a valid brand name and a directory of that name exists directly under `templatesDir`. */
export function brandDirExists(templatesDir: string, name: string | undefined): name is string {
  if (!isPlausibleBrandName(name)) return false;
  const root = path.resolve(templatesDir);
  const dir = path.resolve(root, name);
  if (path.dirname(dir) !== root) return false;
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

function isPlausibleBrandName(name: string | undefined): name is string {
  return (
    typeof name === "string" &&
    name.length > 0 &&
    name.length <= 100 &&
    BRAND_RE.test(name) &&
    !name.includes("..") &&
    !name.startsWith(".")
  );
}

interface Compiled {
  fn: TemplateFunction;
  file: string;
}

export type LoadedTemplates =
  | { kind: "raw"; raw: Compiled; subject?: Compiled }
  | { kind: "structured"; subject: Compiled; text: Compiled; html?: Compiled };

export interface RenderedStructured {
  kind: "structured";
  subject: string;
  text: string;
  html?: string;
}

export interface RenderedRaw {
  kind: "raw";
  /** The complete message, CRLF line endings, ending with CRLF. */
  message: string;
  messageId: string;
}

/** Functions templates may call (`it.t("key", {…})`, `it.printf("%(sender)s")`). */
export interface TemplateHelpers {
  /** A message of the catalogue, in the message's language. */
  t(key: string, params?: Record<string, string | number>): string;
  /** sydent's `%(name)s` placeholders filled with template variables. */
  printf(format: string): string;
}

export interface RenderContext {
  template: TemplateName;
  to: string;
  from: string;
  /** Host part for the Message-ID given to raw templates. */
  messageIdHost: string;
  /** Brand and language variables (`lang`, `brand_display_name`, `colour_primary`, …). */
  look?: Record<string, string>;
  /** Functions given to templates; they read the variables of the message they render. */
  helpers?: (value: (name: string) => string) => TemplateHelpers;
}

/** Undefined/null render as "" (also covers values that bypass the proxy, e.g. inside a layout). */
function filterValue(v: unknown): string {
  return v === undefined || v === null ? "" : String(v);
}

/** Normalises caller values: strings only, well-formed UTF-16 (so `encodeURIComponent` cannot throw). */
function normaliseVars(vars: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(vars ?? {})) {
    if (v === undefined || v === null) continue;
    out.set(k, toWellFormed(typeof v === "string" ? v : String(v)));
  }
  return out;
}

/**
 * Data object handed to templates as `it`: a proxy over a null-prototype object in which every unknown
 * string key reads as "" so that templates (ours and operators') can use any variable, including
 * `it.x.trim()` or `encodeURIComponent(it.x)`, without crashing when the caller did not supply it.
 */
function templateData(
  values: Map<string, string>,
  helpers?: RenderContext["helpers"],
): Record<string, string> {
  const target: Record<string, string> = Object.create(null);
  for (const [k, v] of values) target[k] = v;
  const value = (name: string) => values.get(name) ?? "";
  const fns: Partial<TemplateHelpers> = helpers ? helpers(value) : {};
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop !== "string") return undefined;
      if (Object.hasOwn(t, prop)) return t[prop];
      if (Object.hasOwn(fns, prop)) return fns[prop as keyof TemplateHelpers];
      return "";
    },
  });
}

/** Brand and language variables override the caller's, so that a request cannot pose as the brand. */
function withLook(values: Map<string, string>, look: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(look ?? {})) values.set(k, v);
}

/** How long "this brand has no such template" is believed before the files are looked for again. */
const ABSENT_RECHECK_MS = 10_000;

export class TemplateStore {
  readonly root: string;
  /** HTML parts: every `<%= %>` is HTML-escaped. */
  private readonly etaHtml: Eta;
  /** Subjects, text parts and raw messages: no escaping. */
  private readonly etaText: Eta;
  private readonly cache = new Map<string, Promise<LoadedTemplates>>();
  /** `brand/name` → true when present, else when it was last found absent (ms). */
  private readonly present = new Map<string, true | number>();

  constructor(templatesDir: string) {
    this.root = path.resolve(templatesDir);
    const common = {
      views: this.root,
      cache: true,
      useWith: false,
      varName: "it",
      autoFilter: true,
      filterFunction: filterValue,
    } as const;
    this.etaHtml = new Eta({ ...common, autoEscape: true });
    // No auto-trimming for text: eta's default eats the newline after every tag at the end of a line,
    // which would glue the header lines of a raw message together (`Date: <%= it.date %>`).
    // Templates trim explicitly with `-%>` where wanted.
    this.etaText = new Eta({ ...common, autoEscape: false, autoTrim: false });
  }

  /**
   * Whether `brand` has its own `name` template set (`<name>.eml` or `<name>.subject.eta`). A yes is kept
   * for the life of the process (templates are not reloaded either); a no is checked again after
   * {@link ABSENT_RECHECK_MS}, so that a brand folder added while serving is picked up without a stat call
   * per message.
   */
  hasTemplates(brand: string, name: TemplateName, now = performance.now()): boolean {
    const key = `${brand}/${name}`;
    const known = this.present.get(key);
    if (known === true || (known !== undefined && now - known < ABSENT_RECHECK_MS)) return known === true;
    let found: boolean;
    try {
      found =
        existsSync(this.filePath(brand, `${name}.eml`)) ||
        existsSync(this.filePath(brand, `${name}.subject.eta`));
    } catch {
      found = false;
    }
    if (this.present.size > 1000) this.present.clear();
    this.present.set(key, found ? true : now);
    return found;
  }

  /** Loads (once) the templates of `brand`/`name`. Rejects if the brand has no usable template set. */
  load(brand: string, name: TemplateName): Promise<LoadedTemplates> {
    const key = `${brand}/${name}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.loadUncached(brand, name);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private filePath(brand: string, file: string): string {
    if (!isPlausibleBrandName(brand)) throw new Error("invalid brand name");
    const full = path.resolve(this.root, brand, file);
    const rel = path.relative(this.root, full);
    if (rel.startsWith("..") || path.isAbsolute(rel) || rel.split(path.sep).length !== 2) {
      throw new Error("template path escapes the templates directory");
    }
    return full;
  }

  private async compileFile(
    brand: string,
    file: string,
    eta: Eta,
    optional: true,
  ): Promise<Compiled | undefined>;
  private async compileFile(brand: string, file: string, eta: Eta, optional: false): Promise<Compiled>;
  private async compileFile(
    brand: string,
    file: string,
    eta: Eta,
    optional: boolean,
  ): Promise<Compiled | undefined> {
    const full = this.filePath(brand, file);
    let src: string;
    try {
      src = await readFile(full, "utf8");
    } catch (err) {
      if (optional && (err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    return { fn: eta.compile(src), file: full };
  }

  private async loadUncached(brand: string, name: TemplateName): Promise<LoadedTemplates> {
    const raw = await this.compileFile(brand, `${name}.eml`, this.etaText, true);
    if (raw) {
      const subject = await this.compileFile(brand, `${name}.subject.eta`, this.etaText, true);
      return subject ? { kind: "raw", raw, subject } : { kind: "raw", raw };
    }
    const [subject, text, html] = await Promise.all([
      this.compileFile(brand, `${name}.subject.eta`, this.etaText, false),
      this.compileFile(brand, `${name}.txt.eta`, this.etaText, false),
      this.compileFile(brand, `${name}.html.eta`, this.etaHtml, true),
    ]);
    return html ? { kind: "structured", subject, text, html } : { kind: "structured", subject, text };
  }

  private run(eta: Eta, t: Compiled, data: object): string {
    return eta.render(t.fn, data, { filepath: t.file });
  }

  /** Renders a structured template set. The subject is returned sanitised (one line, no controls). */
  renderStructured(
    t: Extract<LoadedTemplates, { kind: "structured" }>,
    vars: Record<string, unknown>,
    ctx: RenderContext,
  ): RenderedStructured {
    const values = normaliseVars(vars);
    withLook(values, ctx.look);
    values.set("to", ctx.to);
    values.set("from", ctx.from);
    const data = templateData(values, ctx.helpers);
    const subject = sanitizeHeaderText(this.run(this.etaText, t.subject, data));
    const text = this.run(this.etaText, t.text, data);
    if (!t.html) return { kind: "structured", subject, text };
    return { kind: "structured", subject, text, html: this.run(this.etaHtml, t.html, data) };
  }

  /**
   * Renders a raw `.eml` template the way sydent does: every value (caller's and ours) is stripped of
   * CR/LF, and gets `_forhtml` (HTML-escaped) and `_forurl` (percent-encoded) variants. Extra values:
   * `to`, `from`, `date`, `messageid`, `multipart_boundary` (fresh per message) and
   * `subject_header_value` (RFC 2047-encoded rendered `<name>.subject.eta`, or a default subject).
   */
  renderRaw(
    t: Extract<LoadedTemplates, { kind: "raw" }>,
    vars: Record<string, unknown>,
    ctx: RenderContext,
  ): RenderedRaw {
    const messageId = makeMessageId(ctx.messageIdHost);
    const base = normaliseVars(vars);
    withLook(base, ctx.look);
    base.set("to", ctx.to);
    base.set("from", ctx.from);
    base.set("date", rfc2822Date());
    base.set("messageid", messageId);
    base.set("multipart_boundary", randomBoundary());

    const withDerived = (src: Map<string, string>): Map<string, string> => {
      const out = new Map<string, string>();
      for (const [k, v] of src) out.set(k, stripLineBreaks(v));
      // Derived values are set last so a caller cannot supply its own unescaped `x_forhtml`.
      for (const [k, v] of src) {
        const clean = stripLineBreaks(v);
        out.set(`${k}_forhtml`, escapeHtml(clean));
        out.set(`${k}_forurl`, encodeURIComponent(clean));
      }
      return out;
    };

    const subjectText = t.subject
      ? this.run(this.etaText, t.subject, templateData(withDerived(base), ctx.helpers))
      : DEFAULT_SUBJECTS[ctx.template];
    base.set("subject_header_value", encodeHeaderText(subjectText) || DEFAULT_SUBJECTS[ctx.template]);

    const rendered = this.run(this.etaText, t.raw, templateData(withDerived(base), ctx.helpers));
    // Leading blank lines (e.g. left by a code block at the top of the template) would end the header
    // block before it starts.
    let message = rendered.replace(/^(?:\r\n|\r|\n)+/, "").replace(/\r\n|\r|\n/g, "\r\n");
    if (!message.endsWith("\r\n")) message += "\r\n";
    return { kind: "raw", message, messageId };
  }
}
