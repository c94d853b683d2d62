/**
 * The reads waiting under `key` in this turn of the event loop: the first one creates the queue and
 * schedules `flush(key)` for when the turn's I/O callbacks have run (`setImmediate`).
 *
 *   turnQueue(pending, db, flush).push(read);
 */
export function turnQueue<K, W>(pending: Map<K, W[]>, key: K, flush: (key: K) => void): W[] {
  let queue = pending.get(key);
  if (queue === undefined) {
    queue = [];
    pending.set(key, queue);
    setImmediate(flush, key);
  }
  return queue;
}
