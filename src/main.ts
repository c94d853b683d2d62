#!/usr/bin/env node
/**
 * The `seraph` executable. The start-up heap setting (src/infra/startup-heap.ts) comes first, before any
 * other module is even read; then the command line itself (src/cli/main.ts).
 */
import "./infra/startup-heap.js";

await import("./cli/main.js");
