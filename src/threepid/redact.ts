/** Redacts one part of an address the way sydent does: `alice` → `ali...`, `bo` → `b...`. */
function redactPart(s: string, reveal: number): string {
  const chars = Array.from(s);
  if (chars.length > reveal) return `${chars.slice(0, reveal).join("")}...`;
  if (chars.length > 5) return `${chars.slice(0, 3).join("")}...`;
  if (chars.length > 1) return `${chars[0]}...`;
  return "...";
}

/** The redacted `display_name` of an invited email address: `alice@example.org` → `ali...@exa...`. */
export function redactEmail(address: string, usernameChars = 3, domainChars = 3): string {
  const at = address.lastIndexOf("@");
  const user = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? "" : address.slice(at + 1);
  return `${redactPart(user, usernameChars)}@${redactPart(domain, domainChars)}`;
}

/** Shortens `s` to `keep` characters plus an ellipsis when it is longer than `max` (sydent's email truncation). */
export function truncate(s: string, max: number, keep: number): string {
  const chars = Array.from(s);
  return chars.length > max ? `${chars.slice(0, keep).join("")}…` : s;
}
