import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/**
 * A package loaded at its first use and kept, so that a process that never needs it never loads it (idle
 * memory; `test/api/idle-modules.test.ts` checks which ones). The type comes from a type-only import:
 *
 *   import type * as Undici from "undici";
 *   const undici = lazyModule<typeof Undici>("undici");
 *   await undici().request(url);
 */
export function lazyModule<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
