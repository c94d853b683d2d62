/** The user an access token belongs to, as the auth check hands it to handlers. */
export interface Caller {
  userId: string;
  /** Hash of the access token, to revoke it on logout. */
  tokenHash: string;
}
