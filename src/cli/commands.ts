/**
 * Every `seraph` command, in the order `seraph --help` lists them. A new command is a file in src/cli/
 * exporting a {@link Command}, and one line here.
 */
import type { Command } from "./command.js";
import { configCheck } from "./config-check.js";
import { doctor } from "./doctor.js";
import { keysGenerate, keysRevoke, keysShow } from "./keys.js";
import { migrate, migrateDb } from "./migrate.js";
import { pepperRotate } from "./pepper.js";
import { serve } from "./serve.js";

export const COMMANDS: readonly Command[] = [
  serve,
  migrate,
  migrateDb,
  keysGenerate,
  keysShow,
  keysRevoke,
  pepperRotate,
  configCheck,
  doctor,
];
