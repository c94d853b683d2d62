/** CORS headers the identity service spec asks for on every response. */
export const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
  "access-control-allow-headers": "Origin, X-Requested-With, Content-Type, Accept, Authorization",
} as const;
