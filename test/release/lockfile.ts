/**
 * A package-lock.json for an operator's folder that installs the release tarball: the tarball itself plus
 * every runtime package of the repository's lock, at the versions the tests ran with. With it,
 * `npm install --omit=dev --offline ./seraph-<v>.tgz` needs nothing but npm's cache (npm does not read a
 * shrinkwrap inside a local tarball, and without a lock it would ask the registry for every package).
 */
import { readFileSync } from "node:fs";

interface LockEntry {
  version?: string;
  dev?: boolean;
  [key: string]: unknown;
}

export function releaseLockfile(repoLockPath: string, tarballName: string, version: string): object {
  const lock = JSON.parse(readFileSync(repoLockPath, "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const root = lock.packages[""] as LockEntry & { dependencies?: Record<string, string>; bin?: unknown };
  const packages: Record<string, unknown> = {
    "": { name: "seraph-install", dependencies: { seraph: `file:${tarballName}` } },
    "node_modules/seraph": {
      version,
      resolved: `file:${tarballName}`,
      license: root.license,
      dependencies: root.dependencies,
      bin: root.bin,
      engines: root.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === "" || entry.dev) continue;
    // Entries added by `npm install <name>` may lack `resolved`; npm would then ask the registry where the
    // tarball is. The registry's layout gives it (and the cache finds the tarball by its integrity).
    const name = entry.name ?? path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    const resolved =
      entry.resolved ??
      `https://registry.npmjs.org/${name}/-/${String(name).split("/").pop()}-${entry.version}.tgz`;
    packages[path] = { ...entry, resolved };
  }
  return { name: "seraph-install", lockfileVersion: 3, requires: true, packages };
}
