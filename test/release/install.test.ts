/**
 * The release package as an operator gets it: `npm pack`, then in an empty folder
 * `npm install --omit=dev ./seraph-<version>.tgz` from npm's cache (no registry, no TypeScript), then
 * `npx seraph serve --config FILE`. It compiles the SQLite driver, so it takes minutes: it runs from
 * .ci/run with SERAPH_RELEASE_TEST=1, not from `npm test`.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanEnv } from "../support/process.js";
import { freePort } from "../support/seraph.js";
import { releaseLockfile } from "./lockfile.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
const dir = mkdtempSync(join(tmpdir(), "seraph-release-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", args, { cwd, env: cleanEnv(), encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

describe.skipIf(process.env.SERAPH_RELEASE_TEST !== "1")("release package", () => {
  it(
    "installs without dev tooling and serves",
    async () => {
      const tarball = `seraph-${pkg.version}.tgz`;
      const packStart = Date.now();
      npm(["pack", "--pack-destination", dir], ROOT);
      const packMs = Date.now() - packStart;
      const files = execFileSync("tar", ["-tzf", join(dir, tarball)], { encoding: "utf8" }).split("\n");
      for (const f of [
        "package/dist/main.js",
        "package/templates/matrix-org/invite.txt.eta",
        "package/docs/deployment.md",
        "package/config.example.yaml",
        "package/contrib/systemd/seraph.service",
        "package/LICENSE",
        "package/CHANGELOG.md",
        "package/SECURITY.md",
      ])
        expect(files, f).toContain(f);
      // Bundled (scripts/bundle.mjs): what main.js imports at its first use comes in chunks.
      expect(files.filter((f) => /^package\/dist\/chunks\/[\w-]+\.js$/.test(f)).length).toBeGreaterThan(3);
      expect(files.filter((f) => /\.ts$|\.test\.|\.map$|^package\/(src|test|bench)\//.test(f))).toEqual([]);
      expect(existsSync(join(ROOT, tarball))).toBe(false);

      const app = join(dir, "app");
      execFileSync("mkdir", [app]);
      execFileSync("mv", [join(dir, tarball), app]);
      writeFileSync(
        join(app, "package.json"),
        JSON.stringify({
          name: "seraph-install",
          private: true,
          dependencies: { seraph: `file:${tarball}` },
        }),
      );
      writeFileSync(
        join(app, "package-lock.json"),
        JSON.stringify(releaseLockfile(join(ROOT, "package-lock.json"), tarball, pkg.version), null, 2),
      );
      const installStart = Date.now();
      npm(["install", "--omit=dev", "--offline", "--no-audit", "--no-fund", `./${tarball}`], app);
      const installMs = Date.now() - installStart;
      const modules = readdirSync(join(app, "node_modules"));
      for (const dev of Object.keys(pkg.devDependencies))
        expect(modules, dev).not.toContain(dev.split("/")[0]);
      const tarSize = statSync(join(app, tarball)).size;
      process.stdout.write(
        `release: ${tarball} ${(tarSize / 1024).toFixed(0)} KiB; npm pack ${(packMs / 1000).toFixed(0)} s; ` +
          `npm install --omit=dev --offline ${(installMs / 1000).toFixed(0)} s, ${modules.length} packages\n`,
      );

      expect(npm(["exec", "--no", "--", "seraph", "--version"], app).trim()).toBe(`seraph ${pkg.version}`);

      const port = await freePort();
      writeFileSync(
        join(app, "seraph.yaml"),
        `server_name: id.test\nlisten: { host: 127.0.0.1, port: ${port} }\n` +
          `database: { sqlite: { path: ${join(app, "state", "seraph.db")} } }\n` +
          `signing_key_path: ${join(app, "state", "signing.key")}\nlog: { format: json, level: warn }\n`,
      );
      // The installed bin, as the systemd unit runs it: npx (npm exec) does not pass a SIGTERM on to the
      // server it started (seen with npm 11), so the drain on SIGTERM is checked on the server itself.
      const child = spawn(join(app, "node_modules", ".bin", "seraph"), ["serve", "--config", "seraph.yaml"], {
        cwd: app,
        env: cleanEnv(),
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      let out = "";
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      await new Promise<void>((res, rej) => {
        child.stdout?.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("Seraph listening on")) res();
        });
        child.stderr?.on("data", (d: Buffer) => {
          out += d.toString();
        });
        exited.then((code) => rej(new Error(`seraph exited ${code}:\n${out}`)));
      });
      const status = await fetch(`http://127.0.0.1:${port}/_matrix/identity/v2`);
      expect(status.status).toBe(200);
      expect(statSync(join(app, "state", "signing.key")).mode & 0o777).toBe(0o600);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    },
    30 * 60_000,
  );
});
