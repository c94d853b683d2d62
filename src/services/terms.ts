import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { ConfigError } from "../config/load.js";

const termsFileSchema = z.object({
  master_version: z.union([z.string(), z.number()]).optional(),
  docs: z
    .record(
      z.string(),
      z.object({
        version: z.union([z.string(), z.number()]).transform(String),
        langs: z.record(z.string(), z.object({ name: z.string().min(1), url: z.string().min(1) })),
      }),
    )
    .default({}),
});

/** One policy as `GET /terms` shows it: `{version, <lang>: {name, url}, ...}`. */
export type PolicyDocument = { version: string } & Record<string, { name: string; url: string } | string>;

/** The terms of service configured by the operator (sydent's YAML shape). */
export class Terms {
  /** For each policy, the URLs of its current version in every language. */
  private readonly urlsByPolicy: Map<string, Set<string>>;
  private readonly allUrls: Set<string>;
  readonly policies: Record<string, PolicyDocument>;

  constructor(file: z.output<typeof termsFileSchema> = { docs: {} }) {
    this.policies = {};
    this.urlsByPolicy = new Map();
    this.allUrls = new Set();
    for (const [id, doc] of Object.entries(file.docs)) {
      const policy: PolicyDocument = { version: doc.version };
      const urls = new Set<string>();
      for (const [lang, entry] of Object.entries(doc.langs)) {
        policy[lang] = { name: entry.name, url: entry.url };
        urls.add(entry.url);
        this.allUrls.add(entry.url);
      }
      if (urls.size === 0) continue;
      this.policies[id] = policy;
      this.urlsByPolicy.set(id, urls);
    }
  }

  /** Loads the terms file; an absent path or an empty file means no terms. */
  static load(path: string | undefined): Terms {
    if (path === undefined) return new Terms();
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(path, "utf8"));
    } catch (e) {
      throw new ConfigError(`cannot read terms file (terms.path) ${path}: ${(e as Error).message}`);
    }
    if (doc === null || doc === undefined) return new Terms();
    const parsed = termsFileSchema.safeParse(doc);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ConfigError(`terms file (terms.path) ${path}: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    return new Terms(parsed.data);
  }

  get isEmpty(): boolean {
    return this.urlsByPolicy.size === 0;
  }

  /** Whether `url` is the URL of a current policy document (in some language). */
  isKnownUrl(url: string): boolean {
    return this.allUrls.has(url);
  }

  /** Whether the accepted URLs cover every current policy (any language of its current version). */
  allAccepted(accepted: readonly string[]): boolean {
    if (this.isEmpty) return true;
    const set = new Set(accepted);
    for (const urls of this.urlsByPolicy.values()) {
      let ok = false;
      for (const u of urls) {
        if (set.has(u)) {
          ok = true;
          break;
        }
      }
      if (!ok) return false;
    }
    return true;
  }
}
