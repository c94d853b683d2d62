/**
 * Replaces every `{token}` in `template` with `token`. As in sydent (Python `str.format`), `{{` and `}}` stand
 * for literal braces; any other `{…}` is left as is.
 */
export function renderSmsBody(template: string, token: string): string {
  return template.replace(/\{\{|\}\}|\{token\}/g, (m) => (m === "{{" ? "{" : m === "}}" ? "}" : token));
}
