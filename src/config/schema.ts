import { isIP } from "node:net";
import { z } from "zod";
import { adminConfigSchema } from "../admin/config.js";
import { isSingleBareAddress, mailboxAddress } from "../delivery/mime.js";
import { smsConfigSchema } from "../delivery/sms/index.js";
import { parseCidr } from "../federation/ip-guard.js";

const port = z.number().int().min(0).max(65535);

/** An IPv4/IPv6 CIDR such as `10.0.0.0/8` or `::1/128`. */
const cidr = z.string().refine(
  (s) => {
    try {
      parseCidr(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: "expected a CIDR such as 10.0.0.0/8 or ::1/128" },
);

/** A next_link allowlist entry: a host name, or a `/regular expression/` that compiles. */
const nextLinkEntry = z
  .string()
  .min(1)
  .refine(
    (s) => {
      if (!(s.length > 2 && s.startsWith("/") && s.endsWith("/"))) return true;
      try {
        new RegExp(s.slice(1, -1));
        return true;
      } catch {
        return false;
      }
    },
    { message: "not a valid regular expression" },
  );

/** A proxy address: an IP, a CIDR, or one of fastify's names for address ranges. */
const proxy = z
  .string()
  .refine(
    (s) => ["loopback", "linklocal", "uniquelocal"].includes(s) || isIP(s) !== 0 || cidr.safeParse(s).success,
    {
      message: "expected an IP address, a CIDR, loopback, linklocal or uniquelocal",
    },
  );
const hostPort = z.string().min(1);

const smtpSchema = z
  .object({
    host: hostPort,
    /** Default: 465 for `tls`, 587 for `starttls`, 25 for `none`. */
    port: port.optional(),
    tls: z.enum(["none", "starttls", "tls"]).default("starttls"),
    username: z.string().optional(),
    password: z.string().optional(),
    verify_certificates: z.boolean().default(true),
    pool_size: z.number().int().min(1).max(100).optional(),
  })
  .strict();

/** A token bucket: `burst` requests at once, refilled at `per_hour`. */
const bucketSchema = z
  .object({
    burst: z.number().int().min(1),
    per_hour: z.number().min(0),
  })
  .strict();

const postgresSchema = z
  .object({
    url: z.string().min(1),
    pool_size: z.number().int().min(1).max(1000).default(10),
    statement_timeout_ms: z.number().int().min(0).default(10_000),
    /** Streaming replicas for lookups and other reads that may lag (src/store/replicas.ts). */
    read_replicas: z.array(z.string().min(1)).optional(),
    max_replica_lag_ms: z.number().int().min(0).optional(),
    ssl: z
      .object({
        enabled: z.boolean().default(false),
        verify_certificates: z.boolean().default(true),
        ca_path: z.string().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** A colour as `#rrggbb` (it goes into style attributes: nothing else is accepted). */
const colour = z.string().regex(/^#[0-9a-fA-F]{6}$/, "expected a colour such as #0b7a5c");
/** A subject for every language, or one per language tag (`{en: …, fr: …}`). */
const localisedText = z.union([
  z.string().min(1).max(500),
  z.record(z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$/), z.string().min(1).max(500)),
]);
/** `email.brands.<name>`: what people see of the operator (see docs/configuration.md). */
const brandSchema = z
  .object({
    display_name: z.string().min(1).max(100).optional(),
    logo_url: z.url({ protocol: /^https$/ }).optional(),
    operator_url: z.url({ protocol: /^https?$/ }).optional(),
    support_email: z
      .string()
      .refine((s) => isSingleBareAddress(s), { message: "expected a bare address such as help@example.org" })
      .optional(),
    default_language: z
      .string()
      .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$/, "expected a language tag such as fr or pt-BR")
      .optional(),
    colours: z
      .object({
        primary: colour.optional(),
        on_primary: colour.optional(),
        text: colour.optional(),
        muted: colour.optional(),
        background: colour.optional(),
        surface: colour.optional(),
        error: colour.optional(),
      })
      .strict()
      .optional(),
    invite_subject: localisedText.optional(),
    invite_subject_space: localisedText.optional(),
  })
  .strict();

/** The whole configuration file. Every key is documented in docs/configuration.md. */
export const configSchema = z
  .object({
    server_name: z.string().min(1).default("localhost"),
    public_base_url: z.url({ protocol: /^https?$/ }).optional(),
    listen: z
      .object({
        host: z.string().min(1).default("127.0.0.1"),
        port: port.default(8090),
      })
      .strict()
      .prefault({}),
    server: z
      .object({
        /** Processes serving the one listener (node:cluster); "auto" = os.availableParallelism(). */
        workers: z.union([z.literal("auto"), z.number().int().min(1).max(1024)]).default("auto"),
      })
      .strict()
      .prefault({}),
    database: z
      .object({
        sqlite: z
          .object({ path: z.string().min(1).default("./data/seraph.db") })
          .strict()
          .prefault({}),
        postgres: postgresSchema.optional(),
      })
      .strict()
      .prefault({}),
    signing_key_path: z.string().min(1).default("./data/signing.key"),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
        /** Default: `pretty` when standard output is a terminal, else `json`. */
        format: z.enum(["pretty", "json"]).optional(),
        redact_addresses: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        enabled: z.boolean().default(false),
        host: z.string().min(1).default("127.0.0.1"),
        port: port.default(9092),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        max_body_bytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(512 * 1024),
        trusted_proxies: z.array(proxy).default([]),
        request_timeout_seconds: z.number().min(1).max(3600).default(30),
        connection_timeout_seconds: z.number().min(1).max(3600).default(90),
        max_connections: z.number().int().min(1).default(1000),
      })
      .strict()
      .prefault({}),
    email: z
      .object({
        from: z
          .string()
          .min(3)
          .refine((s) => mailboxAddress(s) !== undefined, {
            message: 'expected an address like "Name <id@example.org>"',
          })
          .default("Seraph <noreply@localhost>"),
        smtp: smtpSchema.optional(),
        templates_dir: z.string().optional(),
        default_brand: z.string().min(1).default("matrix-org"),
        outbox_dir: z.string().min(1).default("./data/outbox"),
        hostname: z.string().optional(),
        web_client_location: z.url({ protocol: /^https?$/ }).default("https://app.element.io"),
        web_client_allowlist: z.array(z.string().min(1).toLowerCase()).default([]),
        brands: z
          .record(
            z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/, "a brand is a plain folder name"),
            brandSchema,
          )
          .default({}),
        show_requester_ip: z.boolean().default(false),
        avatar_media_base_url: z.url({ protocol: /^https$/ }).optional(),
        avatar_media_servers: z.array(z.string().min(1).toLowerCase()).default([]),
      })
      .strict()
      .prefault({}),
    sms: smsConfigSchema,
    invites: z
      .object({
        lifetime_days: z.number().int().min(1).default(365),
        username_obfuscate_characters: z.number().int().min(0).max(64).default(3),
        domain_obfuscate_characters: z.number().int().min(0).max(64).default(3),
      })
      .strict()
      .prefault({}),
    validation: z
      .object({
        session_lifetime_seconds: z.number().int().min(60).default(86_400),
        max_token_attempts: z.number().int().min(1).max(1000).default(5),
        next_link_allowlist: z.array(nextLinkEntry).default([]),
        confirm_link_with_button: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    lookup: z
      .object({
        max_addresses: z.number().int().min(1).max(1_000_000).default(10_000),
        pepper_rotation_days: z.number().min(0).default(0),
        previous_pepper_grace_seconds: z.number().int().min(0).default(3600),
        rehash_batch_size: z.number().int().min(1).max(100_000).default(1000),
        maintenance_interval_seconds: z.number().min(0.05).default(10),
        rotation_settle_seconds: z.number().min(0).default(30),
        allow_plaintext: z.boolean().default(true),
        /** Where hashed lookups find the current pepper's hashes (src/services/hash-index.ts). */
        hash_index: z.enum(["memory", "database"]).default("memory"),
      })
      .strict()
      .prefault({}),
    onbind: z
      .object({
        max_attempts: z.number().int().min(1).default(100),
        max_age_hours: z.number().min(0).default(72),
        initial_backoff_seconds: z.number().min(0).default(2),
        max_backoff_seconds: z.number().min(0.01).default(3600),
        poll_interval_ms: z.number().int().min(10).default(2000),
        lease_seconds: z.number().min(1).default(120),
      })
      .strict()
      .prefault({}),
    v1: z
      .object({
        enabled: z.boolean().default(true),
        enable_bind: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        /** `hash_details_only`: query tokens only on v2 `hash_details` (what Synapse sends). */
        allow_query_token: z.union([z.boolean(), z.literal("hash_details_only")]).default(true),
      })
      .strict()
      .prefault({}),
    accounts: z
      .object({
        token_lifetime_seconds: z.number().int().min(0).default(0),
        homeserver_allowlist: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .prefault({}),
    terms: z
      .object({
        path: z.string().optional(),
      })
      .strict()
      .prefault({}),
    federation: z
      .object({
        ip_allowlist: z.array(cidr).default([]),
        ip_denylist: z.array(cidr).default([]),
        verify_certificates: z.boolean().default(true),
        connect_timeout_ms: z.number().int().min(100).default(5_000),
        request_timeout_ms: z.number().int().min(100).default(10_000),
      })
      .strict()
      .prefault({}),
    admin: adminConfigSchema,
    rate_limit: z
      .object({
        enabled: z.boolean().default(true),
        register_per_minute: z.number().int().min(1).default(10),
        authenticated_per_minute: z.number().int().min(1).default(600),
        store_invite_per_minute: z.number().int().min(1).default(30),
        request_token_per_minute: z.number().int().min(1).default(30),
        invites_per_address: bucketSchema.prefault({ burst: 5, per_hour: 12 }),
        invites_per_sender: bucketSchema.prefault({ burst: 10, per_hour: 60 }),
        redis_url: z.string().startsWith("redis").optional(),
        email_per_address: bucketSchema.prefault({ burst: 5, per_hour: 12 }),
        sms_per_number: bucketSchema.prefault({ burst: 5, per_hour: 1 }),
        sms_per_country: bucketSchema.prefault({ burst: 50, per_hour: 60 }),
        lookup_per_account: bucketSchema.prefault({ burst: 2000, per_hour: 10_000 }),
        lookup_per_ip: bucketSchema.prefault({ burst: 20_000, per_hour: 100_000 }),
        v1_lookup_per_ip: bucketSchema.prefault({ burst: 2000, per_hour: 10_000 }),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The configuration as given (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** The validated configuration with every default filled in. */
export type Config = z.output<typeof configSchema>;
