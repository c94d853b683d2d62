import { isIP } from "node:net";
import { z } from "zod";

const port = z.number().int().min(0).max(65535);
const cidr = z.string().refine(
  (s) => {
    const [net, bits, ...rest] = s.split("/");
    const family = isIP(net ?? "");
    if (family === 0 || rest.length) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return /^\d+$/.test(bits) && n <= (family === 6 ? 128 : 32);
  },
  { message: "expected a CIDR such as 127.0.0.1/32 or ::1/128" },
);

/** The `admin:` section: the operators' listener, sydent's internal API, purges and unsubscribe links. */
export const adminConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    listen: z
      .object({
        host: z.string().min(1).default("127.0.0.1"),
        port: port.default(9093),
      })
      .strict()
      .prefault({}),
    sydent_internal_api: z.boolean().default(false),
    sydent_internal_api_allow_unauthenticated_from: z.array(cidr).default([]),
    purge_stale_accounts_days: z.number().int().min(0).default(90),
    purge_interval_minutes: z.number().min(0.01).default(60),
    unsubscribe_link_days: z.number().int().min(1).default(90),
  })
  .strict()
  .prefault({});

export type AdminConfig = z.output<typeof adminConfigSchema>;
