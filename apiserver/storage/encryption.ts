// Encryption at rest (upstream's --encryption-provider-config): an EncryptionConfiguration
// (apiserver.config.k8s.io/v1) names, per resource, an ordered list of providers — aescbc, aesgcm
// and identity. The first provider encrypts every write of the resource; a read is decrypted by the
// provider whose prefix the stored value carries (`k8s:enc:aescbc:v1:<key name>:`), any key of the
// list, so keys rotate by putting the new key first and re-writing the objects (`kubectl get secrets
// -A -o json | kubectl replace -f -`: a value read with any key but the first is stale, and an
// unchanged update of it is written anyway, as upstream's GuaranteedUpdate does). identity stores
// plaintext and reads any value without a prefix.
//
// EncryptingBackend wraps any Backend: etcd (and the embedded store) only ever see ciphertext for
// the configured resources. Our values are strings, so the ciphertext after the prefix is base64
// (upstream stores raw bytes after the same prefix).
//
// aescbc: AES-CBC with PKCS#7 padding and a random 16-byte IV before the ciphertext (upstream's).
// aesgcm: AES-GCM with a random 12-byte nonce before the ciphertext and the 16-byte tag after it,
// the storage key as additional authenticated data (a value copied to another key does not decrypt).

import { createCipheriv, createDecipheriv, randomBytes, type CipherGCMTypes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse as parseYAML } from "yaml";
import {
  StorageError,
  hasProgressWatch,
  type Backend,
  type KeyValue,
  type ListOptions,
  type ListResult,
  type ProgressBackend,
  type ProgressWatch,
  type WatchEvent,
  type WatchProgress,
  type WriteResult,
} from "./interface.ts";

export type EncryptionProvider = { kind: "identity" } | { kind: "aescbc" | "aesgcm"; keys: { name: string; secret: Buffer }[] };

export interface EncryptionRule {
  /** As the file names them: secrets, configmaps, deployments.apps, *.* */
  resources: string[];
  /** Storage key prefixes they cover (/registry/secrets/...). */
  prefixes: string[];
  providers: EncryptionProvider[];
}

export interface EncryptionConfig {
  rules: EncryptionRule[];
}

const PREFIX = "k8s:enc:";

/** Parses an EncryptionConfiguration; throws one line `<source>: <field>: <problem>`. */
export function parseEncryptionConfiguration(text: string, source: string): EncryptionConfig {
  const fail = (field: string, msg: string): never => {
    throw new Error(`${source}: ${field}: ${msg}`);
  };
  let doc: unknown;
  try {
    doc = parseYAML(text);
  } catch (e) {
    return fail("(document)", `not YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  const d = doc as { apiVersion?: unknown; kind?: unknown; resources?: unknown };
  if (typeof doc !== "object" || doc === null) fail("(document)", "not an EncryptionConfiguration");
  if (d.kind !== "EncryptionConfiguration") fail("kind", `must be "EncryptionConfiguration"`);
  if (d.apiVersion !== "apiserver.config.k8s.io/v1") fail("apiVersion", `must be "apiserver.config.k8s.io/v1"`);
  if (!Array.isArray(d.resources) || d.resources.length === 0) fail("resources", "must list at least one resource rule");
  const seen = new Set<string>();
  const rules = (d.resources as unknown[]).map((r, i): EncryptionRule => {
    const path = `resources[${i}]`;
    const rr = r as { resources?: unknown; providers?: unknown };
    if (!Array.isArray(rr.resources) || rr.resources.length === 0) fail(`${path}.resources`, "must name at least one resource");
    const resources = (rr.resources as unknown[]).map((x, j) => {
      if (typeof x !== "string" || !/^(\*\.\*|[a-z0-9-]+(\.[a-z0-9.-]+)?)$/.test(x)) fail(`${path}.resources[${j}]`, `"${String(x)}" is not a resource (secrets, deployments.apps, or *.* for all)`);
      if (seen.has(x as string)) fail(`${path}.resources[${j}]`, `"${String(x)}" is named by an earlier rule`);
      seen.add(x as string);
      return x as string;
    });
    // Our keys are /registry/<resource>/..., without the group (resource names are unique here).
    const prefixes = resources.map((x) => (x === "*.*" ? "/registry/" : `/registry/${x.split(".")[0]}/`));
    if (!Array.isArray(rr.providers) || rr.providers.length === 0) fail(`${path}.providers`, "must list at least one provider");
    const providers = (rr.providers as unknown[]).map((p, j): EncryptionProvider => {
      const pp = `${path}.providers[${j}]`;
      const kinds = typeof p === "object" && p !== null ? Object.keys(p) : [];
      if (kinds.length !== 1) fail(pp, "must be exactly one of aescbc, aesgcm, identity");
      const kind = kinds[0]!;
      if (kind === "identity") return { kind: "identity" };
      if (kind !== "aescbc" && kind !== "aesgcm") return fail(`${pp}.${kind}`, `provider ${kind} is not supported (aescbc, aesgcm, identity)`);
      const keys = ((p as Record<string, { keys?: unknown }>)[kind] ?? {}).keys;
      if (!Array.isArray(keys) || keys.length === 0) fail(`${pp}.${kind}.keys`, "must list at least one key");
      const names = new Set<string>();
      return {
        kind,
        keys: (keys as unknown[]).map((k, n) => {
          const kp = `${pp}.${kind}.keys[${n}]`;
          const kk = k as { name?: unknown; secret?: unknown };
          if (typeof kk.name !== "string" || !/^[A-Za-z0-9._-]+$/.test(kk.name)) fail(`${kp}.name`, "must be a name of letters, digits, '.', '_' or '-'");
          if (names.has(kk.name as string)) fail(`${kp}.name`, `duplicate key name "${String(kk.name)}"`);
          names.add(kk.name as string);
          if (typeof kk.secret !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(kk.secret)) fail(`${kp}.secret`, "must be base64");
          const secret = Buffer.from(kk.secret as string, "base64");
          if (![16, 24, 32].includes(secret.length)) fail(`${kp}.secret`, `must decode to 16, 24 or 32 bytes (an AES key), not ${secret.length}`);
          return { name: kk.name as string, secret };
        }),
      };
    });
    return { resources, prefixes, providers };
  });
  return { rules };
}

export function loadEncryptionConfiguration(path: string): EncryptionConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  return parseEncryptionConfiguration(text, path);
}

function encryptWith(kind: "aescbc" | "aesgcm", key: { name: string; secret: Buffer }, storageKey: string, plain: string): string {
  const bits = key.secret.length * 8;
  if (kind === "aescbc") {
    const iv = randomBytes(16);
    const c = createCipheriv(`aes-${bits}-cbc`, key.secret, iv);
    return `${PREFIX}aescbc:v1:${key.name}:${Buffer.concat([iv, c.update(plain, "utf8"), c.final()]).toString("base64")}`;
  }
  const nonce = randomBytes(12);
  const c = createCipheriv(`aes-${bits}-gcm` as CipherGCMTypes, key.secret, nonce);
  c.setAAD(Buffer.from(storageKey, "utf8"));
  const body = Buffer.concat([c.update(plain, "utf8"), c.final()]);
  return `${PREFIX}aesgcm:v1:${key.name}:${Buffer.concat([nonce, body, c.getAuthTag()]).toString("base64")}`;
}

function decryptWith(kind: "aescbc" | "aesgcm", secret: Buffer, storageKey: string, data: Buffer): string {
  const bits = secret.length * 8;
  if (kind === "aescbc") {
    if (data.length < 32 || data.length % 16 !== 0) throw new Error("the ciphertext is not whole AES blocks");
    const d = createDecipheriv(`aes-${bits}-cbc`, secret, data.subarray(0, 16));
    return Buffer.concat([d.update(data.subarray(16)), d.final()]).toString("utf8");
  }
  if (data.length < 28) throw new Error("the ciphertext is too short");
  const d = createDecipheriv(`aes-${bits}-gcm` as CipherGCMTypes, secret, data.subarray(0, 12));
  d.setAAD(Buffer.from(storageKey, "utf8"));
  d.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([d.update(data.subarray(12, data.length - 16)), d.final()]).toString("utf8");
}

/** The value transformer of a configuration: what writes store and how reads decode, per key. */
export class Transformer {
  constructor(private readonly config: EncryptionConfig) {}

  private rule(key: string): EncryptionRule | undefined {
    // The longest (most specific) prefix wins: secrets before *.*.
    let best: EncryptionRule | undefined;
    let len = -1;
    for (const r of this.config.rules) {
      for (const p of r.prefixes) if (key.startsWith(p) && p.length > len) [best, len] = [r, p.length];
    }
    return best;
  }

  /** The value to store for a write of `plain` under `key`. */
  toStorage(key: string, plain: string): string {
    const first = this.rule(key)?.providers[0];
    if (!first || first.kind === "identity") return plain;
    return encryptWith(first.kind, first.keys[0]!, key, plain);
  }

  /** The plaintext of a stored value, and whether it was stored otherwise than writes store now (a rewrite would change it). */
  fromStorage(key: string, stored: string): { value: string; stale: boolean } {
    const rule = this.rule(key);
    const providers = rule?.providers ?? [{ kind: "identity" as const }];
    if (!stored.startsWith(PREFIX)) {
      if (!providers.some((p) => p.kind === "identity")) throw new StorageError("InternalError", `${key}: no matching prefix found: the value is not encrypted and the providers of its resource have no identity`, key);
      return { value: stored, stale: providers[0]!.kind !== "identity" };
    }
    const m = /^k8s:enc:(aescbc|aesgcm):v1:([A-Za-z0-9._-]+):/.exec(stored);
    if (!m) throw new StorageError("InternalError", `${key}: stored with an unknown encryption prefix ${JSON.stringify(stored.slice(0, 40))}`, key);
    const [prefix, kind, name] = m as unknown as [string, "aescbc" | "aesgcm", string];
    const data = Buffer.from(stored.slice(prefix.length), "base64");
    for (const [i, p] of providers.entries()) {
      if (p.kind !== kind) continue;
      const k = p.keys.find((x) => x.name === name);
      if (!k) continue;
      try {
        return { value: decryptWith(kind, k.secret, key, data), stale: i !== 0 || p.keys[0] !== k };
      } catch (e) {
        throw new StorageError("InternalError", `${key}: cannot decrypt with ${kind} key ${name}: ${(e as Error).message}`, key);
      }
    }
    throw new StorageError("InternalError", `${key}: encrypted with ${kind} key ${name}, which the encryption configuration does not hold`, key);
  }
}

/** A Backend that stores the configured resources encrypted (see the file comment). */
export class EncryptingBackend implements ProgressBackend {
  private readonly t: Transformer;
  constructor(
    private readonly inner: Backend,
    config: EncryptionConfig,
  ) {
    this.t = new Transformer(config);
  }

  private kv(kv: KeyValue): KeyValue;
  private kv(kv: KeyValue | undefined): KeyValue | undefined;
  private kv(kv: KeyValue | undefined): KeyValue | undefined {
    if (!kv) return kv;
    const { value, stale } = this.t.fromStorage(kv.key, kv.value);
    return stale ? { ...kv, value, stale } : { ...kv, value };
  }

  private result(r: WriteResult): WriteResult {
    return r.kv ? { ...r, kv: this.kv(r.kv) } : r;
  }

  private event(e: WatchEvent): WatchEvent {
    return { ...e, kv: this.kv(e.kv), ...(e.prevKv ? { prevKv: this.kv(e.prevKv) } : {}) };
  }

  currentRevision(): Promise<number> {
    return this.inner.currentRevision();
  }
  async get(key: string): Promise<{ revision: number; kv?: KeyValue }> {
    const r = await this.inner.get(key);
    return r.kv ? { ...r, kv: this.kv(r.kv) } : r;
  }
  async create(key: string, value: string): Promise<WriteResult> {
    return this.result(await this.inner.create(key, this.t.toStorage(key, value)));
  }
  async update(key: string, value: string, expectedRevision: number): Promise<WriteResult> {
    return this.result(await this.inner.update(key, this.t.toStorage(key, value), expectedRevision));
  }
  async delete(key: string, expectedRevision?: number): Promise<WriteResult> {
    return this.result(await this.inner.delete(key, expectedRevision));
  }
  async list(prefix: string, opts?: ListOptions): Promise<ListResult> {
    const r = await this.inner.list(prefix, opts);
    return { ...r, kvs: r.kvs.map((kv) => this.kv(kv)) };
  }
  count(prefix: string): Promise<{ revision: number; count: number }> {
    return this.inner.count(prefix);
  }
  async *watch(prefix: string, afterRevision: number, signal: AbortSignal): AsyncIterable<WatchEvent> {
    for await (const e of this.inner.watch(prefix, afterRevision, signal)) yield this.event(e);
  }
  watchWithProgress(prefix: string, afterRevision: number, signal: AbortSignal, opts?: { progressIntervalMs?: number }): ProgressWatch {
    if (!hasProgressWatch(this.inner)) {
      const events = this.watch(prefix, afterRevision, signal);
      return { [Symbol.asyncIterator]: () => events[Symbol.asyncIterator](), requestProgress: () => {} };
    }
    const inner = this.inner.watchWithProgress(prefix, afterRevision, signal, opts);
    const decrypt = (e: WatchEvent | WatchProgress): WatchEvent | WatchProgress => ("type" in e && e.type === "progress" ? e : this.event(e as WatchEvent));
    return {
      requestProgress: () => inner.requestProgress(),
      [Symbol.asyncIterator]: () => {
        const it = inner[Symbol.asyncIterator]();
        return {
          next: async () => {
            const r = await it.next();
            return r.done ? r : { done: false, value: decrypt(r.value) };
          },
          return: async () => (it.return ? it.return() : { done: true, value: undefined }),
        };
      },
    };
  }
  compact(revision: number): Promise<void> {
    return this.inner.compact(revision);
  }
  compactedRevision(): Promise<number> {
    return this.inner.compactedRevision();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
