import { randomBytes } from "node:crypto";
import type { Config } from "../config/schema.js";
import type { Caller } from "../core/caller.js";
import { MatrixError } from "../core/errors.js";
import { sha256Hex } from "../crypto/hash.js";
import type { AccountRepository } from "../store/accounts.js";
import type { Terms } from "./terms.js";

/** Who made an authenticated request. */
export type { Caller };

/** Verifies an OpenID token with the homeserver that issued it; resolves with the user ID (`sub`). */
export interface OpenIdVerifier {
  verifyOpenIdToken(serverName: string, accessToken: string): Promise<string>;
}

export interface AccountSettings {
  /** Seconds a token lives; 0 = until logout. */
  tokenLifetimeSeconds: number;
  /** When non-empty, only users of these homeservers may register. */
  homeserverAllowlist: readonly string[];
}

/** The OpenID object a client got from its homeserver. */
export interface OpenIdToken {
  accessToken: string;
  tokenType: string;
  matrixServerName: string;
  /** Optional: the token is checked with the homeserver at once, so its lifetime is not needed. */
  expiresIn?: number | undefined;
}

/** Registration with OpenID tokens, access tokens and terms acceptance (the v2 auth model). */
export class AccountService {
  constructor(
    private readonly settings: AccountSettings,
    private readonly repo: AccountRepository,
    private readonly verifier: OpenIdVerifier,
    private readonly terms: Terms,
    private readonly now: () => number = Date.now,
    /**
     * A streaming replica (`database.postgres.read_replicas`), asked first. What it does not know (a token
     * or terms acceptance written just now) is asked of the primary; a logout reaches it within its lag.
     */
    private readonly replica?: Pick<AccountRepository, "userForToken" | "acceptedUrls">,
  ) {}

  /** Exchanges a homeserver OpenID token for a Seraph access token (returned once; only its hash is kept). */
  async register(openId: OpenIdToken): Promise<string> {
    if (openId.tokenType !== "Bearer")
      throw new MatrixError("M_INVALID_PARAM", "token_type must be 'Bearer'");
    const allow = this.settings.homeserverAllowlist;
    if (allow.length > 0 && !allow.includes(openId.matrixServerName)) {
      throw new MatrixError(
        "M_UNAUTHORIZED",
        "This identity server does not serve users of that homeserver",
        { status: 403 },
      );
    }
    const userId = await this.verifier.verifyOpenIdToken(openId.matrixServerName, openId.accessToken);
    const token = randomBytes(32).toString("base64url");
    const now = this.now();
    const lifetime = this.settings.tokenLifetimeSeconds;
    await this.repo.createToken(userId, sha256Hex(token), now, lifetime > 0 ? now + lifetime * 1000 : null);
    return token;
  }

  /**
   * Resolves a token to its user; 401 when unknown or expired, 403 M_TERMS_NOT_SIGNED unless `skipTerms`.
   * `batched`: the reads may wait for the other reads of this turn of the event loop (see hotSelect).
   */
  async authenticate(token: string, opts: { skipTerms: boolean; batched?: boolean }): Promise<Caller> {
    const tokenHash = sha256Hex(token);
    const now = this.now();
    const userId =
      (await this.replica?.userForToken(tokenHash, now)) ??
      (await this.repo.userForToken(tokenHash, now, opts.batched));
    if (userId === undefined) throw new MatrixError("M_UNAUTHORIZED", "Unrecognised access token");
    if (!opts.skipTerms && !this.terms.isEmpty && !(await this.acceptedAll(userId, opts.batched))) {
      throw new MatrixError("M_TERMS_NOT_SIGNED", "Terms not signed");
    }
    return { userId, tokenHash };
  }

  private async acceptedAll(userId: string, batched: boolean | undefined): Promise<boolean> {
    if (this.replica && this.terms.allAccepted(await this.replica.acceptedUrls(userId))) return true;
    return this.terms.allAccepted(await this.repo.acceptedUrls(userId, batched));
  }

  async logout(caller: Caller): Promise<void> {
    await this.repo.deleteToken(caller.tokenHash);
  }

  /** Records accepted policy URLs (added to earlier acceptances); URLs of no current policy are ignored. */
  async acceptTerms(caller: Caller, urls: readonly string[]): Promise<void> {
    const known = [...new Set(urls)].filter((u) => this.terms.isKnownUrl(u));
    await this.repo.addAcceptedUrls(caller.userId, known, this.now());
  }
}

/** Builds the account service from `accounts.*`. */
export function createAccountService(
  config: Config["accounts"],
  deps: {
    repo: AccountRepository;
    verifier: OpenIdVerifier;
    terms: Terms;
    now: () => number;
    replica?: AccountRepository | undefined;
  },
): AccountService {
  return new AccountService(
    { tokenLifetimeSeconds: config.token_lifetime_seconds, homeserverAllowlist: config.homeserver_allowlist },
    deps.repo,
    deps.verifier,
    deps.terms,
    deps.now,
    deps.replica,
  );
}
