import type { ImportReport } from "./importer.js";

/** The import report as text: what was imported, what was left out and why, and the sydent bugs fixed. */
export function formatReport(r: ImportReport): string {
  const lines: string[] = [];
  lines.push(
    r.dryRun
      ? "DRY RUN: nothing was written."
      : r.resumed
        ? "Import resumed and finished."
        : "Import finished.",
  );
  lines.push(`server_name ${r.serverName}; signing key ed25519 ${r.publicKey}: ${r.keyAction}`);
  lines.push(
    `lookup pepper: sydent's "${r.pepper}" is the current pepper${r.rotationStarted ? " (a rotation to a new pepper has started)" : ""}`,
  );
  for (const p of r.phases) {
    const parts = Object.entries(p.counters)
      .filter(([, n]) => n !== 0)
      .map(([k, n]) => `${k.replace(/_/g, " ")} ${n}`);
    lines.push(
      `  ${p.phase.padEnd(15)} ${String(p.rows).padStart(9)} rows read${parts.length ? `: ${parts.join(", ")}` : ""}`,
    );
  }
  lines.push("sydent bugs fixed on the way:");
  for (const [what, n] of Object.entries(r.fixedBugs)) lines.push(`  ${String(n).padStart(9)}  ${what}`);
  lines.push(`${r.seconds.toFixed(1)} s`);
  return `${lines.join("\n")}\n`;
}
