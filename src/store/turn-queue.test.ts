import { expect, it } from "vitest";
import { TurnQueues } from "./turn-queue.js";

it("flushes each key's reads of one turn once, in order, and a read pushed while flushing in the next turn", async () => {
  const a = {};
  const b = {};
  const flushed: Array<[object, number[]]> = [];
  let again = true;
  const queues = new TurnQueues<object, number>((key, reads) => {
    flushed.push([key, [...reads]]);
    if (again) {
      again = false;
      queues.push(key, 99);
    }
  });
  queues.push(a, 1);
  queues.push(b, 2);
  queues.push(a, 3);
  expect(flushed).toEqual([]);
  await new Promise((r) => setImmediate(r));
  expect(flushed).toEqual([
    [a, [1, 3]],
    [b, [2]],
  ]);
  await new Promise((r) => setImmediate(r));
  expect(flushed.slice(2)).toEqual([[a, [99]]]);
});
