/** The API prefixes, for tests that write paths out: `${V2}/lookup`. */
export { V1_PREFIX as V1, V2_PREFIX as V2 } from "../../src/core/api-paths.js";
