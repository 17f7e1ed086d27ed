// Public surface of the storage layer: the contract, the drivers chosen by URL, the
// optimistic-concurrency loop, and the watch cache.

import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { StorageError, type Backend, type KeyValue } from "./interface.ts";
import { EtcdBackend } from "./etcd.ts";
import { MemoryBackend, type MemoryBackendOptions } from "./memory.ts";
import { sleep } from "./util.ts";

export * from "./interface.ts";
export { MemoryBackend, LOG_FILE, LOCK_FILE, type MemoryBackendOptions } from "./memory.ts";
export { EtcdBackend, mapEtcdError, type EtcdBackendOptions } from "./etcd.ts";
export { WatchCache, MATCH_ALL, type CacheEvent, type CacheItem, type EventSink, type WatchCacheOptions } from "./watchcache.ts";
export { prefixEnd } from "./util.ts";

/**
 * Opens a storage backend by URL:
 * - `memory://` — the embedded MVCC store, in memory only.
 * - `file://DIR` (relative to the working directory) or `file:///abs/dir` — the embedded store
 *   persisted to an append-only log in DIR: a write is acknowledged (and seen) once fsynced (group
 *   commit); DIR is locked against a second opener.
 * - `etcd://host:port[,host:port...]` — etcd over plain HTTP/2 at those endpoints (an empty host
 *   list means 127.0.0.1:2379).
 * `memoryOptions` tunes the embedded store (history size, snapshot slack, logger).
 */
export async function openBackend(url: string, memoryOptions: MemoryBackendOptions = {}): Promise<Backend> {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(url);
  if (!m) {
    throw new StorageError("Invalid", `storage URL ${JSON.stringify(url)} is not of the form scheme://...; use memory://, file://DIR or etcd://host:port`);
  }
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  switch (scheme) {
    case "memory":
      return MemoryBackend.open({ ...memoryOptions, dir: undefined });
    case "file": {
      let dir: string;
      if (rest.startsWith("/")) dir = fileURLToPath(url); // file:///abs/dir
      else if (rest.startsWith("localhost/")) dir = fileURLToPath(url);
      else dir = path.resolve(process.cwd(), decodeURIComponent(rest));
      if (!rest || dir === "") throw new StorageError("Invalid", `storage URL ${url}: file:// needs a directory`);
      return MemoryBackend.open({ ...memoryOptions, dir });
    }
    case "etcd": {
      const hosts = rest.replace(/\/+$/, "");
      const endpoints = (hosts ? hosts.split(",") : ["127.0.0.1:2379"]).map((h) => {
        const hp = h.trim();
        if (!/^[^\s/]+$/.test(hp)) throw new StorageError("Invalid", `storage URL ${url}: bad etcd endpoint ${JSON.stringify(h)}`);
        return `http://${/:\d+$/.test(hp) ? hp : `${hp}:2379`}`;
      });
      return new EtcdBackend({ endpoints });
    }
    default:
      throw new StorageError(
        "Invalid",
        `unknown storage scheme ${JSON.stringify(scheme)} in ${JSON.stringify(url)}; supported: memory://, file://DIR, etcd://host:port[,host:port...]`,
      );
  }
}

export interface GuaranteedUpdateOptions {
  /** Give up with Conflict after this many failed compare-and-swaps. Default 100. */
  maxRetries?: number;
}

/**
 * The optimistic-concurrency loop: read `key`, let `tryUpdate` compute the next object from the
 * current one, write it if the key's revision is unchanged, otherwise retry with the value the
 * failed write returned. Throws NotFound if the key is absent (or disappears), Conflict after
 * `maxRetries` failed attempts; errors thrown by `tryUpdate` propagate (abort the loop). When the
 * encoded value is unchanged nothing is written and the current kv is returned.
 * Retries after the first few back off with a small random delay so hot keys converge.
 */
export async function guaranteedUpdate<T>(
  backend: Backend,
  key: string,
  decode: (kv: KeyValue) => T,
  tryUpdate: (current: T, kv: KeyValue) => T | Promise<T>,
  encode: (obj: T) => string,
  opts: GuaranteedUpdateOptions = {},
): Promise<{ obj: T; kv: KeyValue; revision: number }> {
  const maxRetries = opts.maxRetries ?? 100;
  const got = await backend.get(key);
  let kv = got.kv;
  for (let attempt = 0; ; attempt++) {
    if (!kv) throw new StorageError("NotFound", `${key} not found`, key);
    const next = await tryUpdate(decode(kv), kv);
    const value = encode(next);
    if (value === kv.value) return { obj: next, kv, revision: kv.modRevision };
    const res = await backend.update(key, value, kv.modRevision);
    if (res.succeeded && res.kv) return { obj: next, kv: res.kv, revision: res.revision };
    if (attempt >= maxRetries) {
      throw new StorageError("Conflict", `${key}: update conflicted ${attempt + 1} times; giving up`, key);
    }
    kv = res.kv;
    if (attempt >= 2) await sleep(Math.random() * Math.min(50, 2 ** (attempt - 2)));
  }
}
