/**
 * Reads that wait under a key (a connection) for the end of this turn of the event loop: the first one of a
 * turn schedules `flush(key, reads)` for when the turn's I/O callbacks have run (`setImmediate`).
 *
 * Each key keeps its queue object for good and only swaps its array: a `Map` entry set and deleted on
 * every turn made V8 rebuild the map's table each time, in the old generation once the map lived there.
 *
 *   const queues = new TurnQueues<Db, Read>((db, reads) => runAll(db, reads));
 *   queues.push(db, read);
 */
export class TurnQueues<K extends object, W> {
  readonly #queues = new WeakMap<K, { waiting: W[] }>();

  constructor(private readonly flush: (key: K, waiting: W[]) => void) {}

  push(key: K, read: W): void {
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { waiting: [] };
      this.#queues.set(key, queue);
    }
    if (queue.waiting.length === 0) setImmediate(this.#run, key, queue);
    queue.waiting.push(read);
  }

  readonly #run = (key: K, queue: { waiting: W[] }): void => {
    const waiting = queue.waiting;
    queue.waiting = [];
    this.flush(key, waiting);
  };
}
