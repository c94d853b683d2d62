import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SydentInputError } from "./sydent-config.js";

/**
 * Converts sydent's email templates into Seraph's (eta) templates, brand folder by brand folder:
 * `<brand>/invite_template.eml.j2` (Jinja2) or `invite_template.eml` (Python `%(name)s`) become
 * `<brand>/invite.eml`, the same for `verification_template`, and `verify_response_template.html`
 * (`%(message)s`) becomes Seraph's page template. The matrix.org sign URL that sydent's shipped invite
 * templates hard-code becomes this server's (`sign_url`), and `https://app.element.io` links use
 * `web_client_location`.
 */

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The matrix.org sign-ed25519 URL of sydent's shipped templates (percent-encoded, `%%` in older ones). */
const MATRIX_ORG_SIGN_URL =
  /https%{1,2}3A%{1,2}2F%{1,2}2Fmatrix\.org%{1,2}2F_matrix%{1,2}2Fidentity%{1,2}2Fapi%{1,2}2Fv1%{1,2}2Fsign-ed25519%{1,2}3Ftoken%{1,2}3D\{\{\s*token(?:\|urlencode)?\s*\}\}%{1,2}26private_key%{1,2}3D\{\{\s*ephemeral_private_key(?:\|urlencode)?\s*\}\}/g;

export interface Converted {
  text: string;
  warnings: string[];
}

/** A Jinja test expression (`x`, `not x`, `x == "y"`, `a and b`) as JavaScript over `it`. */
function condition(expr: string, warnings: string[]): string {
  const tokens = expr.match(/"[^"]*"|'[^']*'|==|!=|[()]|[A-Za-z_][A-Za-z0-9_.]*|\S/g) ?? [];
  return tokens
    .map((t) => {
      if (t === "and") return "&&";
      if (t === "or") return "||";
      if (t === "not") return "!";
      if (t === "==") return "===";
      if (t === "!=") return "!==";
      if (t === "true" || t === "True") return "true";
      if (t === "false" || t === "False") return "false";
      if (t === "(" || t === ")" || /^["']/.test(t)) return t;
      if (IDENT.test(t)) return `it.${t}`;
      warnings.push(`unsupported token "${t}" in {% if ${expr} %}`);
      return "false";
    })
    .join(" ");
}

/** One `{{ … }}` output. `html` = inside a text/html part, where sydent escaped by default. */
function output(expr: string, html: boolean, warnings: string[]): string {
  const [head, ...filters] = expr.split("|").map((s) => s.trim());
  if (!head || !IDENT.test(head)) {
    warnings.push(`unsupported expression {{ ${expr} }}: left empty`);
    return "";
  }
  let name = head;
  let raw = !html || name.endsWith("_forhtml") || name.endsWith("_forurl");
  let json = false;
  for (const f of filters) {
    if (f === "safe") raw = true;
    else if (f === "e" || f === "escape") raw = false;
    else if (f === "urlencode") {
      name = `${name}_forurl`;
      raw = true;
    } else if (f === "tojson") json = true;
    else warnings.push(`filter |${f} of {{ ${expr} }} is not supported: ignored`);
  }
  if (json) return `<%= JSON.stringify(it.${name}) %>`;
  if (!raw) name = `${name}_forhtml`;
  return `<%= it.${name} %>`;
}

/** Converts one Jinja2 `.eml.j2` template. */
export function convertJinja(src: string): Converted {
  const warnings: string[] = [];
  let text = src.replace(MATRIX_ORG_SIGN_URL, "{{ sign_url_forurl }}");
  text = text.replaceAll("https://app.element.io/#/room/", "{{ web_client_location }}/#/room/");
  // Older shipped templates kept Python's %% escape, which Jinja prints as is.
  if (text.includes("%%")) text = text.replaceAll("%%", "%");
  let out = "";
  let html = false;
  let depth = 0;
  const re = /(\{\{-?\s*([\s\S]*?)\s*-?\}\})|(\{%-?\s*([\s\S]*?)\s*-?%\})|(\{#[\s\S]*?#\})/g;
  let last = 0;
  const literal = (s: string) => {
    // Track MIME parts: after a text/html Content-Type and until the next boundary.
    for (const line of s.split("\n")) {
      if (/^content-type:\s*text\/html/i.test(line)) html = true;
      else if (/^--/.test(line) || /^content-type:\s*text\/plain/i.test(line)) html = false;
    }
    out += s.replaceAll("<%", '<%= "<" + "%" %>');
  };
  for (let m = re.exec(text); m; m = re.exec(text)) {
    literal(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1]) out += output(m[2]!, html, warnings);
    else if (m[3]) {
      const stmt = m[4]!;
      const [kw, ...rest] = stmt.split(/\s+/);
      const arg = rest.join(" ");
      if (kw === "if") {
        depth++;
        out += `<% if (${condition(arg, warnings)}) { %>`;
      } else if (kw === "elif") out += `<% } else if (${condition(arg, warnings)}) { %>`;
      else if (kw === "else") out += "<% } else { %>";
      else if (kw === "endif") {
        depth--;
        out += "<% } %>";
      } else warnings.push(`{% ${stmt} %} is not supported: removed`);
    }
    // {# comments #} are dropped.
  }
  literal(text.slice(last));
  if (depth !== 0) throw new SydentInputError("unbalanced {% if %} / {% endif %} in a Jinja template");
  return { text: out, warnings };
}

/** Converts a Python `%(name)s` template (sydent's `.eml` and page templates). */
export function convertPercent(src: string): Converted {
  const warnings: string[] = [];
  const text = src.replace(MATRIX_ORG_SIGN_URL, "%(sign_url_forurl)s");
  const out = text
    .replaceAll("<%", '<%= "<" + "%" %>')
    .replace(/%\(([A-Za-z_][A-Za-z0-9_]*)\)s|%%/g, (_m, name: string | undefined) =>
      name === undefined ? "%" : `<%= it.${name} %>`,
    );
  return { text: out, warnings };
}

const NAMES = ["invite", "verification"] as const;

export interface TemplatesReport {
  written: string[];
  warnings: string[];
}

/** Converts every brand folder under `srcDir` into `destDir` (created; existing files are replaced). */
export function templatesFromSydent(
  srcDir: string,
  destDir: string,
  subjects: { verification?: string; invite?: string; inviteSpace?: string } = {},
): TemplatesReport {
  if (!existsSync(srcDir) || !statSync(srcDir).isDirectory()) {
    throw new SydentInputError(`no sydent templates folder at ${srcDir}`);
  }
  const report: TemplatesReport = { written: [], warnings: [] };
  for (const brand of readdirSync(srcDir)) {
    const from = join(srcDir, brand);
    if (!statSync(from).isDirectory()) continue;
    const to = join(destDir, brand);
    const write = (file: string, text: string) => {
      mkdirSync(to, { recursive: true });
      writeFileSync(join(to, file), text);
      report.written.push(join(brand, file));
    };
    for (const name of NAMES) {
      const j2 = join(from, `${name}_template.eml.j2`);
      const py = join(from, `${name}_template.eml`);
      let converted: Converted | undefined;
      if (existsSync(j2)) converted = convertJinja(readFileSync(j2, "utf8"));
      else if (existsSync(py)) converted = convertPercent(readFileSync(py, "utf8"));
      if (!converted) continue;
      report.warnings.push(...converted.warnings.map((w) => `${brand}/${name}: ${w}`));
      write(`${name}.eml`, converted.text);
    }
    const page = join(from, "verify_response_template.html");
    if (existsSync(page))
      write("verify_response_template.html", convertPercent(readFileSync(page, "utf8")).text);
  }
  // sydent takes subjects from sydent.conf; Seraph from <name>.subject.eta in each brand.
  for (const brand of readdirSync(destDir)) {
    const to = join(destDir, brand);
    if (subjects.verification && existsSync(join(to, "verification.eml"))) {
      writeFileSync(join(to, "verification.subject.eta"), convertPercent(subjects.verification).text);
      report.written.push(join(brand, "verification.subject.eta"));
    }
    if (subjects.invite && existsSync(join(to, "invite.eml"))) {
      const chat = convertPercent(subjects.invite).text;
      const space = subjects.inviteSpace ? convertPercent(subjects.inviteSpace).text : chat;
      writeFileSync(
        join(to, "invite.subject.eta"),
        space === chat ? chat : `<% if (it.room_type === "m.space") { %>${space}<% } else { %>${chat}<% } %>`,
      );
      report.written.push(join(brand, "invite.subject.eta"));
    }
  }
  return report;
}
