import { MatrixError } from "../core/errors.js";
import { randomToken, sha256Hex } from "../crypto/hash.js";
import type { AdminTokenInfo, KyselyAdminTokenRepository } from "../store/admin-tokens.js";
import type { Auditor } from "./audit.js";

const TOKEN_PREFIX = "seraph_admin_";
const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** Operator tokens: created once (only their hash is kept), revoked by name. */
export class AdminTokens {
  constructor(
    private readonly repo: KyselyAdminTokenRepository,
    private readonly audit: Auditor,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates a token called `name` and returns it (the only time it is shown). */
  async create(name: string, actor: string): Promise<string> {
    if (!NAME.test(name))
      throw new MatrixError("M_INVALID_PARAM", "token names are 1-64 of A-Z a-z 0-9 . _ @ -");
    const token = `${TOKEN_PREFIX}${randomToken(40)}`;
    const created = await this.repo.create(name, sha256Hex(token), this.now());
    await this.audit.record(actor, "token.create", undefined, created ? "ok" : "exists", { name });
    if (!created)
      throw new MatrixError("M_UNKNOWN", `a live token is already called ${name}`, { status: 409 });
    return token;
  }

  async revoke(name: string, actor: string): Promise<boolean> {
    const revoked = await this.repo.revoke(name, this.now());
    await this.audit.record(actor, "token.revoke", undefined, revoked ? "ok" : "not_found", { name });
    return revoked;
  }

  list(): Promise<AdminTokenInfo[]> {
    return this.repo.list();
  }

  /** The name of the operator holding `token`, or 401 M_UNAUTHORIZED. */
  async authenticate(token: string | undefined): Promise<string> {
    if (!token?.startsWith(TOKEN_PREFIX))
      throw new MatrixError("M_UNAUTHORIZED", "Unknown or missing admin token");
    const name = await this.repo.nameForHash(sha256Hex(token));
    if (name === undefined) throw new MatrixError("M_UNAUTHORIZED", "Unknown or missing admin token");
    return name;
  }
}
