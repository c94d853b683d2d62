/**
 * Decides where the browser may be sent after a successful GET submitToken. Entries are host names
 * (`app.example.org`, matched exactly, case-insensitively) or regular expressions written `/.../`
 * and matched against the whole URL. Only http(s) URLs are ever followed; an empty list means never.
 */
export class NextLinkPolicy {
  private readonly hosts = new Set<string>();
  private readonly patterns: RegExp[] = [];

  constructor(allowlist: readonly string[]) {
    for (const entry of allowlist) {
      if (entry.length > 2 && entry.startsWith("/") && entry.endsWith("/")) {
        // Anchored: the expression must match the whole URL, not just a part of it.
        this.patterns.push(new RegExp(`^(?:${entry.slice(1, -1)})$`));
      } else {
        this.hosts.add(entry.toLowerCase());
      }
    }
  }

  /** Parses a next_link given at requestToken: an absolute http(s) URL, else null (it will not be stored). */
  static sanitize(nextLink: string | undefined): string | null {
    if (nextLink === undefined || nextLink.length > 2048) return null;
    let url: URL;
    try {
      url = new URL(nextLink);
    } catch {
      return null;
    }
    return url.protocol === "https:" || url.protocol === "http:" ? url.toString() : null;
  }

  /** Whether a stored next_link may be redirected to. */
  allows(nextLink: string): boolean {
    const safe = NextLinkPolicy.sanitize(nextLink);
    if (safe === null) return false;
    const url = new URL(safe);
    if (this.hosts.has(url.hostname.toLowerCase())) return true;
    return this.patterns.some((p) => p.test(safe));
  }
}
