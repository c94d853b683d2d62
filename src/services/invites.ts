import type { ResolvedConfig } from "../config/load.js";
import { V1_PREFIX, V2_PREFIX } from "../core/api-paths.js";
import { type JsonValue, MatrixError } from "../core/errors.js";
import { decodeBase64, encodeBase64 } from "../crypto/base64.js";
import { generateSigningKey, signingKeyFromSeed, signJson } from "../crypto/ed25519.js";
import { randomToken } from "../crypto/hash.js";
import type { Mailer } from "../delivery/index.js";
import { serverPartOfUserId } from "../federation/index.js";
import { type BucketRule, bucketRule, enforceLimits, type KeyedRateLimiter } from "../infra/rate-limiter.js";
import type { AssociationRepository } from "../store/associations.js";
import type { InviteRepository } from "../store/invites.js";
import { normaliseEmail } from "../threepid/email-address.js";
import { redactEmail, truncate } from "../threepid/redact.js";
import type { KeyService } from "./keys.js";

export interface InviteSettings {
  serverName: string;
  publicBaseUrl: string;
  defaultWebClientLocation: string;
  /** Path prefix of the API that sign URLs in emails point at (v1 when enabled, else v2). */
  signUrlPrefix: string;
  usernameRevealChars: number;
  domainRevealChars: number;
  /** Hosts an inviter may name as `org.matrix.web_client_location`; others get the default location. */
  webClientAllowlist: readonly string[];
  limits: { perAddress: BucketRule; perSender: BucketRule };
  /**
   * Base URL of a homeserver media repository that serves room avatars to mail clients
   * (`email.avatar_media_base_url`); without it an `mxc://` avatar is not shown.
   */
  avatarMediaBaseUrl?: string | undefined;
  /** Server names of `mxc://` URIs that base serves (`email.avatar_media_servers`); empty: any. */
  avatarMediaServers?: readonly string[] | undefined;
}

/** What the caller of store-invite gets back. */
export interface StoredInvite {
  token: string;
  longTermPublicKey: string;
  ephemeralPublicKey: string;
  displayName: string;
}

/** The signed object returned by sign-ed25519. */
export interface SignedInviteProof {
  mxid: string;
  sender: string;
  token: string;
  signatures: Record<string, Record<string, string>>;
}

export interface StoreInviteRequest {
  medium: string;
  address: string;
  roomId: string;
  sender: string;
  /** Every parameter of the request, as received. */
  params: Record<string, JsonValue>;
  brand?: string | undefined;
  /** Language of the invite email (a shipped language; undefined: the brand's default). */
  lang?: string | undefined;
  /** Whether `sender` was authenticated (v2); in v1 anyone may claim any sender. */
  senderVerified: boolean;
}

/** Abuse controls and unsubscribe links (the admin module's InvitePolicy). */
export interface InviteGuard {
  /** Throws 403 M_FORBIDDEN when the invite must be refused (blocklists, suppressed address). */
  check(c: {
    medium: string;
    address: string;
    sender: string;
    roomId: string;
    params: Record<string, unknown>;
  }): Promise<void>;
  /** A signed link that stops invitations to `address`. */
  unsubscribeUrl(medium: string, address: string): string;
}

/** Stores third-party invites, emails the invitee, and signs invite proofs with ephemeral keys. */
export class InviteService {
  constructor(
    private readonly settings: InviteSettings,
    private readonly invites: InviteRepository,
    private readonly associations: AssociationRepository,
    private readonly keys: KeyService,
    private readonly mailer: Mailer,
    private readonly limiter: KeyedRateLimiter,
    private readonly now: () => number = Date.now,
    private readonly guard?: InviteGuard,
  ) {}

  /**
   * Validates and stores an invite with a fresh token and ephemeral key pair, then emails the invitee.
   * If the email cannot be sent the invite is removed again and M_EMAIL_SEND_ERROR is thrown.
   */
  async storeInvite(req: StoreInviteRequest): Promise<StoredInvite> {
    if (req.medium !== "email") {
      throw new MatrixError(
        "M_UNRECOGNIZED",
        "Didn't understand medium: only 'email' invites are supported",
        { status: 400 },
      );
    }
    const address = normaliseEmail(req.address);
    if (address === null) throw new MatrixError("M_INVALID_EMAIL", "Invalid email address");
    if (serverPartOfUserId(req.sender) === null) {
      throw new MatrixError("M_INVALID_PARAM", "sender must be a Matrix user ID");
    }

    const existing = await this.associations.findByThreepid("email", address);
    if (existing) {
      throw new MatrixError("M_THREEPID_IN_USE", "Binding already known", { extra: { mxid: existing.mxid } });
    }

    await this.guard?.check({
      medium: "email",
      address,
      sender: req.sender,
      roomId: req.roomId,
      params: req.params,
    });

    // Per invitee and per inviter, so that nobody can flood an address (or send mass mail) from this server.
    await enforceLimits(this.limiter, [
      [`invite-to:${address}`, this.settings.limits.perAddress],
      [`invite-from:${req.sender}`, this.settings.limits.perSender],
    ]);

    const token = randomToken(64);
    const ephemeral = generateSigningKey();
    const now = this.now();
    await this.invites.insert({
      token,
      medium: "email",
      address,
      roomId: req.roomId,
      sender: req.sender,
      ephemeralPublicKey: ephemeral.publicKeyBase64,
      params: req.params,
      receivedTs: now,
      lang: req.lang ?? null,
      brand: req.brand ?? null,
    });

    try {
      await this.sendInviteMail(req, address, token, encodeBase64(ephemeral.seed));
    } catch (err) {
      await this.invites.delete(token);
      throw new MatrixError("M_EMAIL_SEND_ERROR", "Failed to send the invitation email", { cause: err });
    }

    return {
      token,
      longTermPublicKey: this.keys.signingKey.publicKeyBase64,
      ephemeralPublicKey: ephemeral.publicKeyBase64,
      displayName: redactEmail(address, this.settings.usernameRevealChars, this.settings.domainRevealChars),
    };
  }

  private async sendInviteMail(req: StoreInviteRequest, address: string, token: string, privateKey: string) {
    const vars = this.templateVars(req, address, token, privateKey);
    const unsubscribe = this.guard?.unsubscribeUrl("email", address);
    if (unsubscribe) vars.unsubscribe_url = unsubscribe;
    await this.mailer.send({
      template: "invite",
      brand: req.brand,
      lang: req.lang,
      to: address,
      vars,
      // RFC 2369 and RFC 8058 (one-click): mail clients offer an unsubscribe button.
      ...(unsubscribe
        ? {
            headers: {
              "List-Unsubscribe": `<${unsubscribe}>`,
              "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
          }
        : {}),
    });
  }

  /**
   * Emails a stored invite again with a new ephemeral key pair (the old private key is not kept, so it
   * cannot be sent twice); `replaceKey` stores the new public key in place of the old one.
   */
  async resendInvite(
    invite: {
      token: string;
      address: string;
      roomId: string;
      sender: string;
      params: Record<string, JsonValue>;
    },
    replaceKey: (newPublicKey: string) => Promise<void>,
  ): Promise<void> {
    const ephemeral = generateSigningKey();
    await replaceKey(ephemeral.publicKeyBase64);
    const req: StoreInviteRequest = {
      medium: "email",
      address: invite.address,
      roomId: invite.roomId,
      sender: invite.sender,
      params: invite.params,
      senderVerified: false,
    };
    await this.sendInviteMail(req, invite.address, invite.token, encodeBase64(ephemeral.seed));
  }

  /** The variables an invite template sees, under sydent's names. */
  private templateVars(req: StoreInviteRequest, address: string, token: string, privateKey: string) {
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.params)) {
      // The mailer derives `x_forhtml`/`x_forurl` itself; a caller must not supply unescaped ones.
      if (k.endsWith("_forhtml") || k.endsWith("_forurl")) continue;
      // Only Seraph sets these: an inviter must not put a link of their own under "unsubscribe".
      if (k === "unsubscribe_url" || k === "room_avatar_http_url" || k === "inviter") continue;
      if (typeof v === "string") vars[k] = v;
      else if (typeof v === "number" || typeof v === "boolean") vars[k] = String(v);
    }
    for (const k of [
      "room_alias",
      "room_avatar_url",
      "room_join_rules",
      "room_name",
      "room_type",
      "sender_avatar_url",
      "sender_display_name",
      "guest_user_id",
      "guest_access_token",
    ]) {
      vars[k] ??= "";
    }
    vars.address = address;
    vars.medium = "email";
    vars.room_id = req.roomId;
    vars.sender = req.sender;
    vars.token = token;
    vars.ephemeral_private_key = privateKey;

    // sydent's semantics: the display name is empty when none was sent, and the bracketed values end
    // with a space ("(%s) ") so that a template can write `{{ sender_display_name }} {{ bracketed… }}`.
    const displayName = vars.sender_display_name ?? "";
    vars.sender_display_name = displayName ? truncate(displayName, 20, 19) : "";
    vars.inviter = vars.sender_display_name || req.sender;
    vars.bracketed_verified_sender = req.senderVerified ? `(${req.sender}) ` : "";
    vars.sender_verified = req.senderVerified ? "true" : "";
    const roomName = vars.room_name ?? "";
    vars.room_name = truncate(roomName, 30, 25);
    vars.bracketed_room_name = roomName ? `(${vars.room_name}) ` : "";
    vars.room_avatar_http_url = this.avatarUrl(vars.room_avatar_url ?? "");

    vars.web_client_location = this.webClientLocation(vars["org.matrix.web_client_location"]);
    const query = `token=${encodeURIComponent(token)}&private_key=${encodeURIComponent(privateKey)}`;
    vars.sign_url = `${this.settings.publicBaseUrl}${this.settings.signUrlPrefix}/sign-ed25519?${query}`;
    return vars;
  }

  /**
   * An `https://` URL a mail client can load for an `mxc://server/media` avatar: a thumbnail from the
   * configured media base, when it serves that server's media; else "".
   */
  private avatarUrl(mxc: string): string {
    const base = this.settings.avatarMediaBaseUrl?.replace(/\/+$/, "");
    const m = /^mxc:\/\/([A-Za-z0-9.:[\]-]{1,255})\/([A-Za-z0-9_-]{1,255})$/.exec(mxc);
    if (!base || !m) return "";
    const [, server, media] = m as unknown as [string, string, string];
    const servers = this.settings.avatarMediaServers ?? [];
    if (servers.length > 0 && !servers.includes(server.toLowerCase())) return "";
    return `${base}/_matrix/media/v3/thumbnail/${encodeURIComponent(server)}/${media}?width=96&height=96&method=crop`;
  }

  /** The inviter's web client if the operator allows its host, else the configured default. */
  private webClientLocation(requested: string | undefined): string {
    if (requested) {
      try {
        const url = new URL(requested);
        const allowed = this.settings.webClientAllowlist.includes(url.hostname.toLowerCase());
        if (allowed && (url.protocol === "https:" || url.protocol === "http:")) return requested;
      } catch {
        // not a URL: use the default
      }
    }
    return this.settings.defaultWebClientLocation;
  }

  /**
   * Signs `{mxid, sender, token}` with the ephemeral private key the invitee received by email.
   * Unknown token → 404 M_UNRECOGNIZED.
   */
  async signInvite(mxid: string, token: string, privateKeyBase64: string): Promise<SignedInviteProof> {
    const seed = decodeBase64(privateKeyBase64);
    if (seed === null || seed.length !== 32) {
      throw new MatrixError(
        "M_INVALID_PARAM",
        "private_key must be a 32-byte ed25519 seed in unpadded base64",
      );
    }
    const invite = await this.invites.findByToken(token);
    if (!invite) throw new MatrixError("M_UNRECOGNIZED", "Didn't recognize token");
    const key = signingKeyFromSeed(seed, "ed25519:0");
    return signJson({ mxid, sender: invite.sender, token }, this.settings.serverName, key);
  }
}

/** Builds the invite service from its configuration sections. */
export function createInviteService(
  config: Pick<ResolvedConfig, "server_name" | "public_base_url" | "email" | "invites" | "v1" | "rate_limit">,
  deps: {
    invites: InviteRepository;
    associations: AssociationRepository;
    keys: KeyService;
    mailer: Mailer;
    limiter: KeyedRateLimiter;
    guard?: InviteGuard | undefined;
    now: () => number;
  },
): InviteService {
  return new InviteService(
    {
      serverName: config.server_name,
      publicBaseUrl: config.public_base_url,
      defaultWebClientLocation: config.email.web_client_location,
      signUrlPrefix: config.v1.enabled ? V1_PREFIX : V2_PREFIX,
      usernameRevealChars: config.invites.username_obfuscate_characters,
      domainRevealChars: config.invites.domain_obfuscate_characters,
      webClientAllowlist: config.email.web_client_allowlist,
      avatarMediaBaseUrl: config.email.avatar_media_base_url,
      avatarMediaServers: config.email.avatar_media_servers,
      limits: {
        perAddress: bucketRule(config.rate_limit, config.rate_limit.invites_per_address),
        perSender: bucketRule(config.rate_limit, config.rate_limit.invites_per_sender),
      },
    },
    deps.invites,
    deps.associations,
    deps.keys,
    deps.mailer,
    deps.limiter,
    deps.now,
    deps.guard,
  );
}
