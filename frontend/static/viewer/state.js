// One state object for the whole viewer, with a registry of re-render callbacks per key.
// Panels never talk to each other: they set keys and subscribe to the keys they draw.
// Changes are batched: callbacks run once per microtask with the set of keys that changed.

export function createStore(initial) {
  const values = { ...initial };
  const listeners = new Map(); // key -> Set(callback)
  let pending = new Set();
  let scheduled = false;

  function flush() {
    scheduled = false;
    const changed = pending;
    pending = new Set();
    const callbacks = new Set();
    for (const key of changed) for (const cb of listeners.get(key) ?? []) callbacks.add(cb);
    for (const cb of callbacks) cb(values, changed);
  }

  /** Set several keys; a key whose new value is identical (Object.is) does not fire. */
  function set(patch) {
    for (const [key, value] of Object.entries(patch)) {
      if (!(key in values)) throw new Error(`unknown state key: ${key}`);
      if (Object.is(values[key], value)) continue;
      values[key] = value;
      pending.add(key);
    }
    if (pending.size && !scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  }

  /** Register `callback(values, changedKeys)` for any of `keys`; returns an unsubscribe function. */
  function on(keys, callback) {
    for (const key of keys) {
      if (!(key in values)) throw new Error(`unknown state key: ${key}`);
      if (!listeners.has(key)) listeners.set(key, new Set());
      listeners.get(key).add(callback);
    }
    return () => keys.forEach((key) => listeners.get(key)?.delete(callback));
  }

  return {
    get: (key) => values[key],
    snapshot: () => ({ ...values }),
    set,
    on,
    /** Run pending callbacks now (used before measuring or exporting). */
    flush: () => scheduled && flush(),
  };
}
