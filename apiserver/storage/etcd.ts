// The etcd driver: the Backend contract on etcd's KV and Watch APIs via the `etcd3` client, using
// the low-level RPCs (range/txn/put/deleteRange/compact) for exact compare-and-swap semantics.
// Across member loss and leader changes it behaves as clientv3 with the apiserver's settings:
// every call asks for a member with a leader (clientv3's WithRequireLeader, the "hasleader"
// metadata: a member that lost its leader refuses at once instead of holding the request), reads
// are retried on another member, and a write is retried only when it certainly was not applied —
// one that may have been (the connection dropped after sending it, its deadline passed) is
// reported as such and never repeated (the etcd3 client's own retry policy is turned off).

import {
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  ClientClosedError,
  isRecoverableError,
  type IKeyValue,
  type IRangeRequest,
  type IWatchResponse,
  type Watcher,
} from "etcd3";
import { credentials as grpcCredentials, Metadata, type CallOptions } from "@grpc/grpc-js";
// cockatiel is the etcd3 client's policy library (installed with it).
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, type IPolicy } from "cockatiel";
import {
  StorageError,
  isStorageError,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type ProgressBackend,
  type ProgressWatch,
  type WatchEvent,
  type WatchProgress,
  type WriteResult,
} from "./interface.ts";
import { AsyncQueue, expired, sleep } from "./util.ts";

export interface EtcdBackendOptions {
  /** Client URLs, e.g. ["http://127.0.0.1:2379"]. */
  endpoints: string[];
  /** Connection timeout in ms. Default 5000. */
  dialTimeoutMs?: number;
  /** Overall deadline of a call in ms, retries included. Default 15000. */
  callTimeoutMs?: number;
  /**
   * Deadline of one write attempt in ms. A write whose leader dies holds until etcd's own request
   * timeout (5 s + two election timeouts); past this it is reported as of unknown outcome so the
   * client can decide. Default 4000: four election timeouts of a default etcd, and well above a
   * loaded 2-core machine's write latency (p99 ~0.9 s), so a slow write is not mistaken for a lost one.
   */
  writeTimeoutMs?: number;
  /** Deadline of one read attempt in ms before it is retried on another member. Default 3000. */
  readTimeoutMs?: number;
}

/** Whether a call reads (idempotent: retried on another member) or writes (retried only if not applied). */
export type EtcdCallKind = "read" | "write";

/**
 * What a failed etcd call did, as far as the client can know: "not-sent" when it never reached a
 * member's raft log (no connection, circuit open, refused up front: no leader, too many requests),
 * "rejected" when etcd answered with a definite error (compacted, invalid...), "unknown" when it
 * may have been proposed (connection lost after sending, deadline passed, leader lost mid-way).
 */
export function callOutcome(e: unknown): "not-sent" | "rejected" | "unknown" {
  if (e instanceof ClientClosedError) return "not-sent";
  const msg = e instanceof Error ? e.message : String(e);
  if (/No connection established|ECONNREFUSED|circuit breaker is open|Broken circuit|Name resolution failed|etcdserver: no leader|etcdserver: too many requests|etcdserver: not capable/i.test(msg)) {
    return "not-sent";
  }
  if (/required revision has been compacted|future revision|request is too large|too many operations|duplicate key|permission denied|invalid auth token|authentication failed|key is not provided|INVALID_ARGUMENT/i.test(msg)) {
    return "rejected";
  }
  return "unknown";
}

/**
 * The retry policy: whether a failed call is tried again (after a short backoff, within the call's
 * overall deadline). A read is retried whenever the failure is not a definite answer; a write only
 * when it certainly was not applied — never a write that may have been, which would apply it twice
 * (a create retried after it succeeded reports AlreadyExists; an update, a Conflict).
 */
export function shouldRetry(kind: EtcdCallKind, e: unknown): boolean {
  const outcome = callOutcome(e);
  return kind === "read" ? outcome !== "rejected" : outcome === "not-sent";
}

/** Every call carries clientv3's require-leader metadata (see the file comment). */
const REQUIRE_LEADER = grpcCredentials.createFromMetadataGenerator((_params, callback) => {
  const md = new Metadata();
  md.set("hasleader", "true");
  callback(null, md);
});

/**
 * The etcd3 client's global policy, replaced: no retries (its default retries any "recoverable"
 * error three times, writes included); `rpc` retries per `shouldRetry`. Only `execute` is ever
 * called on the global policy.
 */
const NO_RETRY = {
  execute: <T>(fn: (context: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> =>
    Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal, attempt: 0 })),
} satisfies Pick<IPolicy, "execute">;

/**
 * Per member: skip a member after three failures in a row, and try it again after a second (the
 * client's default waits 5 s, which with one member means 5 s of refusals after it is back).
 */
// A member that keeps failing (a paused or partitioned one, whose calls only time out) is tried
// again after 1 s, then 2, 4, up to 5 s while it goes on failing: one hung trial call per 5 s, not
// a third of all calls; a member that answers again is used at once.
const memberBreaker = () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: new ExponentialBackoff({ initialDelay: 1000, maxDelay: 5000 }), breaker: new ConsecutiveBreaker(3) });

const ZERO = Buffer.from([0]);

/** etcd's range end for a byte prefix (the prefix with its last byte incremented); "\0" = no end. */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return ZERO;
}

function toKv(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString("utf8"),
    value: kv.value.toString("utf8"),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
  };
}

/**
 * Maps etcd3/gRPC errors onto StorageError codes. For a write (`kind` "write") whose outcome is
 * unknown (see callOutcome) the error says so: code Timeout (a 504 Status), "the write may or may
 * not have been applied".
 */
export function mapEtcdError(e: unknown, key?: string, kind: EtcdCallKind = "read"): StorageError {
  if (isStorageError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const opts = { cause: e };
  if (kind === "write" && callOutcome(e) === "unknown") {
    return new StorageError("Timeout", `etcd: the write may or may not have been applied (${msg})`, key, opts);
  }
  if (/required revision has been compacted/.test(msg)) return new StorageError("ResourceExpired", `etcd: ${msg}`, key, opts);
  if (/future revision/.test(msg)) return new StorageError("Invalid", `etcd: ${msg}`, key, opts);
  if (e instanceof GRPCDeadlineExceededError || /deadline exceeded|timed out|timeout/i.test(msg)) {
    return new StorageError("Timeout", `etcd: ${msg}`, key, opts);
  }
  if (
    e instanceof GRPCUnavailableError ||
    e instanceof ClientClosedError ||
    /unavailable|ECONNREFUSED|ECONNRESET|No connection established|closed|Broken circuit|circuit breaker is open/i.test(msg)
  ) {
    return new StorageError("Unreachable", `etcd unreachable: ${msg}`, key, opts);
  }
  return new StorageError("InternalError", `etcd: ${msg}`, key, opts);
}

/**
 * EtcdBackend: see the file comment. Notes on semantics:
 * - A successful delete returns the deleted value with `modRevision` set to the deletion revision
 *   (matching the watch event), like the memory driver.
 * - Progress notifications come from etcd's own progress notify (the watch is created with
 *   progress_notify; etcd sends them every `--experimental-watch-progress-notify-interval`, default
 *   10m, so run etcd with a short interval, e.g. 1s). `requestProgress()` is a no-op here: etcd
 *   before 3.4.25/3.5.8 can deliver a requested progress notification ahead of pending events, and
 *   the etcd3 client cannot route its (watch id -1) response.
 * - The etcd3 watcher reconnects by itself; we pin its resume revision to the last revision we
 *   delivered (its own bookkeeping uses response header revisions, which can skip events) and drop
 *   duplicates by revision.
 */
export class EtcdBackend implements ProgressBackend {
  readonly client: Etcd3;
  private readonly callTimeoutMs: number;
  private readonly writeTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private closed = false;
  private readonly active = new Set<() => void>();
  /** Compaction revision we know of (from our own compact calls). */
  private knownCompacted = 0;

  constructor(opts: EtcdBackendOptions) {
    this.client = new Etcd3({
      hosts: opts.endpoints,
      dialTimeout: opts.dialTimeoutMs ?? 5000,
      // Only execute() is called on it (see NO_RETRY).
      faultHandling: { global: NO_RETRY as unknown as IPolicy, host: memberBreaker },
    });
    this.callTimeoutMs = opts.callTimeoutMs ?? 15_000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 4000;
    this.readTimeoutMs = opts.readTimeoutMs ?? 3000;
  }

  /**
   * One call: each attempt with its deadline and the require-leader metadata, retried per
   * `shouldRetry` (50 ms doubling to 500 ms) until the call's overall deadline.
   */
  private async rpc<T>(fn: (opts: CallOptions) => Promise<T>, key?: string, kind: EtcdCallKind = "read"): Promise<T> {
    if (this.closed) throw new StorageError("Unreachable", "storage backend is closed", key);
    const end = Date.now() + this.callTimeoutMs;
    let backoff = 50;
    for (;;) {
      const deadline = Math.min(end, Date.now() + (kind === "write" ? this.writeTimeoutMs : this.readTimeoutMs));
      try {
        return await fn({ deadline, credentials: REQUIRE_LEADER });
      } catch (e) {
        if (this.closed || !shouldRetry(kind, e) || Date.now() + backoff >= end) throw mapEtcdError(e, key, kind);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 500);
      }
    }
  }

  async currentRevision(): Promise<number> {
    const res = await this.rpc((o) => this.client.kv.range({ key: ZERO, count_only: true }, o));
    return Number(res.header.revision);
  }

  async get(key: string): Promise<{ revision: number; kv?: KeyValue }> {
    const res = await this.rpc((o) => this.client.kv.range({ key: Buffer.from(key) }, o), key);
    const revision = Number(res.header.revision);
    const kv = res.kvs[0];
    return kv ? { revision, kv: toKv(kv) } : { revision };
  }

  async create(key: string, value: string): Promise<WriteResult> {
    const k = Buffer.from(key);
    const res = await this.rpc(
      (o) =>
        this.client.kv.txn(
          {
            compare: [{ key: k, target: "Create", result: "Equal", create_revision: 0 }],
            success: [{ request_put: { key: k, value: Buffer.from(value) } }],
            failure: [{ request_range: { key: k } }],
          },
          o,
        ),
      key,
      "write",
    );
    const revision = Number(res.header.revision);
    if (res.succeeded) return { revision, succeeded: true, kv: { key, value, createRevision: revision, modRevision: revision } };
    const cur = res.responses[0]?.response_range?.kvs[0];
    return cur ? { revision, succeeded: false, kv: toKv(cur) } : { revision, succeeded: false };
  }

  async update(key: string, value: string, expectedRevision: number): Promise<WriteResult> {
    if (!(expectedRevision > 0)) {
      const cur = await this.get(key);
      return cur.kv ? { revision: cur.revision, succeeded: false, kv: cur.kv } : { revision: cur.revision, succeeded: false };
    }
    const k = Buffer.from(key);
    const res = await this.rpc(
      (o) =>
        this.client.kv.txn(
          {
            compare: [{ key: k, target: "Mod", result: "Equal", mod_revision: expectedRevision }],
            success: [{ request_put: { key: k, value: Buffer.from(value), prev_kv: true } }],
            failure: [{ request_range: { key: k } }],
          },
          o,
        ),
      key,
      "write",
    );
    const revision = Number(res.header.revision);
    if (res.succeeded) {
      const prev = res.responses[0]?.response_put?.prev_kv;
      const createRevision = prev ? Number(prev.create_revision) : revision;
      return { revision, succeeded: true, kv: { key, value, createRevision, modRevision: revision } };
    }
    const cur = res.responses[0]?.response_range?.kvs[0];
    return cur ? { revision, succeeded: false, kv: toKv(cur) } : { revision, succeeded: false };
  }

  async delete(key: string, expectedRevision?: number): Promise<WriteResult> {
    const k = Buffer.from(key);
    if (expectedRevision !== undefined && expectedRevision > 0) {
      const res = await this.rpc(
        (o) =>
          this.client.kv.txn(
            {
              compare: [{ key: k, target: "Mod", result: "Equal", mod_revision: expectedRevision }],
              success: [{ request_delete_range: { key: k, prev_kv: true } }],
              failure: [{ request_range: { key: k } }],
            },
            o,
          ),
        key,
        "write",
      );
      const revision = Number(res.header.revision);
      if (res.succeeded) {
        const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
        return prev
          ? { revision, succeeded: true, kv: { ...toKv(prev), modRevision: revision } }
          : { revision, succeeded: true };
      }
      const cur = res.responses[0]?.response_range?.kvs[0];
      return cur ? { revision, succeeded: false, kv: toKv(cur) } : { revision, succeeded: false };
    }
    const res = await this.rpc((o) => this.client.kv.deleteRange({ key: k, prev_kv: true }, o), key, "write");
    const revision = Number(res.header.revision);
    const prev = res.prev_kvs[0];
    if (Number(res.deleted) === 0 || !prev) return { revision, succeeded: false };
    return { revision, succeeded: true, kv: { ...toKv(prev), modRevision: revision } };
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<ListResult> {
    const p = Buffer.from(prefix);
    const start = opts.startKey !== undefined && opts.startKey > prefix ? Buffer.from(opts.startKey) : p;
    const req: IRangeRequest = {
      key: start.length === 0 ? ZERO : start,
      range_end: rangeEnd(p),
    };
    if (opts.limit && opts.limit > 0) req.limit = opts.limit;
    if (opts.revision && opts.revision > 0) req.revision = opts.revision;
    const res = await this.rpc((o) => this.client.kv.range(req, o));
    const kvs = res.kvs.map(toKv);
    const revision = opts.revision && opts.revision > 0 ? opts.revision : Number(res.header.revision);
    const remaining = Math.max(0, Number(res.count) - kvs.length);
    return { revision, kvs, more: res.more || remaining > 0, remaining };
  }

  private async countAt(prefix: string, revision?: number): Promise<{ revision: number; count: number }> {
    const p = Buffer.from(prefix);
    const req: IRangeRequest = { key: p.length === 0 ? ZERO : p, range_end: rangeEnd(p), count_only: true };
    if (revision) req.revision = revision;
    const res = await this.rpc((o) => this.client.kv.range(req, o));
    return { revision: Number(res.header.revision), count: Number(res.count) };
  }

  count(prefix: string): Promise<{ revision: number; count: number }> {
    return this.countAt(prefix);
  }

  async compact(revision: number): Promise<void> {
    try {
      await this.rpc((o) => this.client.kv.compact({ revision, physical: true }, o));
    } catch (e) {
      // Compacting at or below the current compaction point is a no-op.
      if (!isStorageError(e, "ResourceExpired")) throw e;
    }
    this.knownCompacted = Math.max(this.knownCompacted, revision);
  }

  /**
   * etcd does not report its compaction revision directly; find the oldest readable revision by
   * binary search with count-only ranges (about log2(revision) cheap RPCs).
   */
  async compactedRevision(): Promise<number> {
    const cur = await this.currentRevision();
    const readable = async (r: number): Promise<boolean> => {
      try {
        await this.rpc((o) => this.client.kv.range({ key: ZERO, count_only: true, revision: r }, o));
        return true;
      } catch (e) {
        if (isStorageError(e, "ResourceExpired")) return false;
        throw e;
      }
    };
    // Smallest readable revision in [1, cur]: lo is "unreadable" (0 as a sentinel), hi readable.
    let lo = 0;
    let hi = Math.max(1, cur);
    if (this.knownCompacted > 1 && this.knownCompacted < hi && (await readable(this.knownCompacted))) hi = this.knownCompacted;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await readable(mid)) hi = mid;
      else lo = mid;
    }
    if (hi > 1) this.knownCompacted = Math.max(this.knownCompacted, hi);
    return hi === 1 ? Math.min(this.knownCompacted, 1) : hi;
  }

  watch(prefix: string, afterRevision: number, signal: AbortSignal): AsyncIterable<WatchEvent> {
    return onlyEvents(this.watchWithProgress(prefix, afterRevision, signal));
  }

  watchWithProgress(prefix: string, afterRevision: number, signal: AbortSignal): ProgressWatch {
    const p = Buffer.from(prefix);
    let last = afterRevision; // every change <= last has been pushed
    let watcher: Watcher | undefined;
    let done = false;
    const cleanup = () => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", onAbort);
      this.active.delete(onAbort);
      const w = watcher;
      watcher = undefined;
      if (w) {
        w.removeAllListeners();
        w.on("error", () => {});
        w.cancel().catch(() => {});
      }
    };
    const q = new AsyncQueue<WatchEvent | WatchProgress>(cleanup);
    const onAbort = () => {
      cleanup();
      q.end();
    };
    const result: ProgressWatch = {
      [Symbol.asyncIterator]: () => q[Symbol.asyncIterator](),
      requestProgress: () => {},
    };
    if (this.closed) {
      q.fail(new StorageError("Unreachable", "storage backend is closed"));
      return result;
    }
    if (signal.aborted) {
      q.end();
      return result;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    this.active.add(onAbort);

    const fail = (err: unknown) => {
      if (done) return;
      cleanup();
      const from = last;
      // Was the watch canceled because the revisions it needs are compacted?
      this.rpc((o) => this.client.kv.range({ key: ZERO, count_only: true, revision: from + 1 }, o))
        .then(
          () => q.fail(mapEtcdError(err)),
          (e: unknown) => {
            if (isStorageError(e, "ResourceExpired")) {
              this.compactedRevision().then(
                (c) => q.fail(expired(from, c)),
                () => q.fail(expired(from, from + 1)),
              );
            } else q.fail(mapEtcdError(err));
          },
        );
    };

    const onData = (res: IWatchResponse) => {
      if (done) return;
      if (res.events.length === 0) {
        if (res.created || res.canceled) return;
        const rev = Number(res.header.revision);
        if (rev > last) {
          last = rev;
          q.push({ type: "progress", revision: rev });
        }
        return;
      }
      const floor = last;
      for (const ev of res.events) {
        const revision = Number(ev.kv.mod_revision);
        if (revision <= floor) continue; // replayed after a reconnect
        if (revision < last) {
          fail(new StorageError("InternalError", `etcd watch out of order: ${revision} after ${last}`));
          return;
        }
        last = revision;
        const prevKv = ev.prev_kv ? toKv(ev.prev_kv) : undefined;
        if (ev.type === "Put") {
          const kv = toKv(ev.kv);
          q.push({ type: "put", created: ev.kv.version === "1", kv, ...(prevKv ? { prevKv } : {}), revision });
        } else {
          const kv: KeyValue = prevKv
            ? { ...prevKv, modRevision: revision }
            : { key: ev.kv.key.toString("utf8"), value: "", createRevision: 0, modRevision: revision };
          q.push({ type: "delete", created: false, kv, ...(prevKv ? { prevKv } : {}), revision });
        }
      }
    };

    try {
      const w = this.client
        .watch()
        .inRange({ start: p.length === 0 ? ZERO : p, end: rangeEnd(p) })
        .startRevision(String(afterRevision + 1))
        .withPreviousKV()
        .watcher();
      watcher = w;
      w.request.progress_notify = true;
      // Resume exactly after what we delivered, whatever the client's own bookkeeping says.
      w.on("connecting", () => {
        w.request.start_revision = last + 1;
      });
      w.on("data", onData);
      w.on("error", (err) => fail(err));
    } catch (e) {
      fail(e);
    }
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const stop of [...this.active]) stop();
    this.closed = true;
    this.client.close();
  }
}

async function* onlyEvents(w: AsyncIterable<WatchEvent | WatchProgress>): AsyncGenerator<WatchEvent> {
  for await (const e of w) if (e.type !== "progress") yield e;
}
