import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseIni } from "ini";
import type { SigningKey } from "../crypto/ed25519.js";
import { KeyFileError, parseKeyFile } from "../crypto/key-file.js";

/** A sydent input that cannot be imported (bad file, wrong version, missing key…). */
export class SydentInputError extends Error {}

type Section = Record<string, string>;

/**
 * `sydent.conf`, read the way sydent's ConfigParser reads it: sections, with `[DEFAULT]` values seen from
 * every section. Keys are case-insensitive.
 */
export class SydentConfig {
  private constructor(
    readonly path: string,
    private readonly sections: Map<string, Section>,
  ) {}

  static read(path: string): SydentConfig {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new SydentInputError(`cannot read sydent config ${path}: ${(e as Error).message}`);
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = parseIni(text) as Record<string, unknown>;
    } catch (e) {
      throw new SydentInputError(`${path} is not an INI file: ${(e as Error).message}`);
    }
    const sections = new Map<string, Section>();
    for (const [name, body] of Object.entries(parsed)) {
      if (typeof body !== "object" || body === null) continue;
      const section: Section = {};
      for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
        if (typeof v === "object" && v !== null) continue;
        section[k.toLowerCase()] = String(v);
      }
      sections.set(name === "DEFAULT" ? "DEFAULT" : name.toLowerCase(), section);
    }
    if (sections.size === 0) throw new SydentInputError(`${path} has no sections: is it a sydent.conf?`);
    return new SydentConfig(path, sections);
  }

  /** The section names other than DEFAULT. */
  get sectionNames(): string[] {
    return [...this.sections.keys()].filter((s) => s !== "DEFAULT");
  }

  /** Keys set in a section itself (not inherited from DEFAULT). */
  ownKeys(section: string): string[] {
    return Object.keys(this.sections.get(section) ?? {});
  }

  /** A value as sydent sees it: the section's, else DEFAULT's; empty strings count as unset. */
  get(section: string, key: string): string | undefined {
    const k = key.toLowerCase();
    const v = this.sections.get(section)?.[k] ?? this.sections.get("DEFAULT")?.[k];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  /** A path option, resolved against the folder of sydent.conf (sydent resolves against its working folder). */
  resolvePath(section: string, key: string): string | undefined {
    const v = this.get(section, key);
    if (v === undefined) return undefined;
    return isAbsolute(v) ? v : resolve(dirname(this.path), v);
  }

  get serverName(): string {
    const name = this.get("general", "server.name");
    if (!name) {
      throw new SydentInputError(
        `${this.path}: [general] server.name is not set; sydent then uses the host name, so set it to the name sydent signed with`,
      );
    }
    return name;
  }

  /** The long-term signing key from `[crypto] ed25519.signingkey`. */
  get signingKey(): SigningKey {
    const line = this.get("crypto", "ed25519.signingkey");
    if (!line)
      throw new SydentInputError(`${this.path}: [crypto] ed25519.signingkey is not set: no key to import`);
    try {
      const keys = parseKeyFile(line, `${this.path} [crypto] ed25519.signingkey`);
      return keys[0]!;
    } catch (e) {
      if (e instanceof KeyFileError) throw new SydentInputError(e.message);
      throw e;
    }
  }
}
