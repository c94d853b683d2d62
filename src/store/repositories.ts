import type { Kysely } from "kysely";
import { type AccountRepository, KyselyAccountRepository } from "./accounts.js";
import { type HashRepository, KyselyHashRepository } from "./association-hashes.js";
import { type AssociationRepository, KyselyAssociationRepository } from "./associations.js";
import type { Dialect } from "./dialect.js";
import { type InviteRepository, KyselyInviteRepository } from "./invites.js";
import { type KeyRepository, KyselyKeyRepository } from "./keys.js";
import { KyselyOnbindJobRepository, type OnbindJobRepository } from "./onbind-jobs.js";
import { KyselyPepperRepository, type PepperRepository } from "./peppers.js";
import type { Database } from "./schema.js";
import { KyselySessionRepository, type SessionRepository } from "./validation-sessions.js";

/**
 * One repository per table group; each table is written by exactly one of them:
 * accounts (accounts, access_tokens, accepted_terms), associations, hashes (association_hashes; its
 * triggers write association_hash_version and association_hash_changes, which it reads and prunes),
 * invites (invites, ephemeral_keys), keys (signing_keys), onbindJobs, peppers (lookup_peppers),
 * sessions (validation_sessions).
 */
export interface Repositories {
  accounts: AccountRepository;
  associations: AssociationRepository;
  hashes: HashRepository;
  invites: InviteRepository;
  keys: KeyRepository;
  onbindJobs: OnbindJobRepository;
  peppers: PepperRepository;
  sessions: SessionRepository;
}

/** Runs `work` in one database transaction, over repositories bound to it; commits when it resolves. */
export type Transact = <T>(work: (repos: Repositories) => Promise<T>) => Promise<T>;

/**
 * `transact` for work that writes lookup hashes (or deletes associations, whose hashes go by cascade): the
 * lock of their version row is taken first (see `lockHashVersion`).
 *
 *   await writingHashes(store.transaction)(async (r) => r.hashes.insert(rows));
 */
export function writingHashes(transact: Transact): Transact {
  return (work) =>
    transact(async (r) => {
      await r.hashes.lockVersion();
      return work(r);
    });
}

/** The repositories over a database handle (the pool, or one transaction). */
export function repositories(db: Kysely<Database>, dialect: Dialect): Repositories {
  return {
    accounts: new KyselyAccountRepository(db, dialect),
    associations: new KyselyAssociationRepository(db, dialect),
    hashes: new KyselyHashRepository(db, dialect),
    invites: new KyselyInviteRepository(db),
    keys: new KyselyKeyRepository(db, dialect),
    onbindJobs: new KyselyOnbindJobRepository(db),
    peppers: new KyselyPepperRepository(db),
    sessions: new KyselySessionRepository(db),
  };
}
