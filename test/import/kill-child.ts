/**
 * Runs `importSydent` with the options given as JSON in argv[2], in a process of its own, for the test that
 * kills an import mid-batch (`interruptBy: "kill"`: SIGKILL inside the batch's transaction).
 */
import type { ImportOptions } from "../../src/import/importer.js";
import { importSydent } from "../../src/import/importer.js";

const opts = JSON.parse(process.argv[2]!) as ImportOptions;
await importSydent({ ...opts, interruptBy: "kill" });
process.stdout.write("the import was not killed\n");
