// `node --import` this file: every module URL the ESM loader resolves is appended to the file named by
// MODULE_TRACE_FILE (test/api/idle-modules.test.ts: what a serving process loads).
import { register } from "node:module";

register(new URL("./module-trace-hooks.mjs", import.meta.url), {
  data: { file: process.env.MODULE_TRACE_FILE },
});
