import { afterEach, describe, expect, it } from "vitest";
import { generateSeed, publicKeyObject, signingKeyFromSeed, verifyJsonSignature } from "../crypto/ed25519.js";
import { migrateToLatest, openStore, type Store } from "../store/database.js";
import { AssociationService } from "./associations.js";
import { KeyService } from "./keys.js";
import type { ValidationService } from "./validation.js";

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe("AssociationService.signStored", () => {
  it("stores a signature for associations that have none, and leaves a rebound one alone", async () => {
    store = await openStore({ sqlite: { path: ":memory:" } });
    await migrateToLatest(store);
    const key = signingKeyFromSeed(generateSeed());
    const keys = await KeyService.load([key], store.repos.keys, 1);
    // signStored needs neither validation nor onbind.
    const service = new AssociationService(
      "is.test",
      store.repos,
      store.transaction,
      {} as ValidationService,
      keys,
      () => undefined,
    );
    // Rows as an older release (or a revocation) left them: no signed_json.
    await store.db
      .insertInto("associations")
      .values(
        [1, 2, 3].map((i) => ({
          medium: "email",
          address: `u${i}@example.org`,
          mxid: `@u${i}:hs.test`,
          ts: 10,
          not_before: 10,
          not_after: 20,
        })),
      )
      .execute();
    expect(await service.signStored(2)).toBe(2);
    expect(await service.signStored(2)).toBe(1);
    expect(await service.signStored(2)).toBe(0);
    for (const i of [1, 2, 3]) {
      const json = await service.lookupSignedJson("email", `u${i}@example.org`);
      const stored = await store.db
        .selectFrom("associations")
        .select("signed_json")
        .where("address", "=", `u${i}@example.org`)
        .executeTakeFirstOrThrow();
      expect(stored.signed_json).toBe(json);
      const parsed = JSON.parse(json!);
      expect(parsed).toMatchObject({ mxid: `@u${i}:hs.test`, ts: 10, not_before: 10, not_after: 20 });
      expect(verifyJsonSignature(parsed, "is.test", key.keyId, publicKeyObject(key.publicKey))).toBe(true);
    }
    // Changed since it was read (a rebind stored its own): not overwritten.
    const id = (await store.db.selectFrom("associations").select("id").executeTakeFirstOrThrow()).id;
    await store.db
      .updateTable("associations")
      .set({ signed_json: null, mxid: "@new:hs.test" })
      .where("id", "=", id)
      .execute();
    expect(await store.repos.associations.storeSignature(id, { mxid: "@u1:hs.test", ts: 10 }, "{}")).toBe(
      false,
    );
  });
});
