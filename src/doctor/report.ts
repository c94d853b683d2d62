/** The doctor's findings: one line per check, grouped, each failure with what to do about it. */
export type Status = "pass" | "warn" | "fail";

export interface Finding {
  group: string;
  check: string;
  status: Status;
  detail: string;
  /** What to change; every failure has one, warnings usually do. */
  fix?: string;
}

export class Report {
  readonly findings: Finding[] = [];

  /** A recorder for one group of checks (`database`, `smtp`, ...). */
  group(name: string): Group {
    return new Group(name, this.findings);
  }

  get failed(): boolean {
    return this.findings.some((f) => f.status === "fail");
  }

  count(status: Status): number {
    return this.findings.filter((f) => f.status === status).length;
  }
}

export class Group {
  constructor(
    readonly name: string,
    private readonly into: Finding[],
  ) {}

  pass(check: string, detail: string): void {
    this.into.push({ group: this.name, check, status: "pass", detail });
  }

  warn(check: string, detail: string, fix?: string): void {
    this.into.push({ group: this.name, check, status: "warn", detail, ...(fix ? { fix } : {}) });
  }

  fail(check: string, detail: string, fix: string): void {
    this.into.push({ group: this.name, check, status: "fail", detail, fix });
  }
}

const LABEL: Record<Status, string> = { pass: "pass", warn: "WARN", fail: "FAIL" };

/** The table printed by `seraph doctor`; plain text, no colours (it is pasted into support requests). */
export function formatReport(report: Report): string {
  const width = Math.max(20, ...report.findings.map((f) => f.check.length)) + 2;
  const lines: string[] = [];
  let group = "";
  for (const f of report.findings) {
    if (f.group !== group) {
      group = f.group;
      lines.push("", `${group}`);
    }
    lines.push(`  ${LABEL[f.status]}  ${f.check.padEnd(width)}${f.detail}`);
    if (f.fix) lines.push(`  ${" ".repeat(6)}${" ".repeat(width)}fix: ${f.fix}`);
  }
  const fails = report.count("fail");
  const warns = report.count("warn");
  lines.push(
    "",
    `${report.count("pass")} passed, ${warns} warning${warns === 1 ? "" : "s"}, ${fails} failure${fails === 1 ? "" : "s"}`,
  );
  return `${lines.join("\n").replace(/^\n/, "")}\n`;
}

/** A short, single-line description of an error (no stack, no secrets from URLs). */
export function errorText(e: unknown): string {
  const err = e as { message?: unknown; code?: unknown } | null;
  const message = typeof err?.message === "string" ? err.message : String(e);
  const code = typeof err?.code === "string" && !message.includes(err.code) ? ` (${err.code})` : "";
  return `${message.split("\n")[0]!.replace(/\/\/[^/@\s]*:[^/@\s]*@/g, "//***@")}${code}`;
}
