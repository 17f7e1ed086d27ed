// Each simulated node's own client certificate (CN=system:node:<node>, O=system:nodes), obtained as
// upstream's kubelet TLS bootstrap does (pkg/kubelet/certificate/bootstrap, client-go's
// util/certificate/csr): a private key, a CertificateSigningRequest for the
// kube-apiserver-client-kubelet signer, a wait until the certificate is issued (or the request is
// Denied/Failed) — on one watch of CSRs for the whole pool rather than one per node —, the key and
// certificate written under the pool's pki dir and reused while valid, and renewal at 70–90% of the
// certificate's life (the certificate manager's jittered deadline), then with the node's own
// identity (selfnodeclient). The pool's own identity bootstraps; after that
// everything a node writes goes through its own client.
//
// Keys are EC P-256 (node:crypto: well under a millisecond each, where RSA 2048 takes ~50–100 ms),
// one per node as upstream's kubelet has, so hundreds of nodes of a pool bootstrap in about the time
// of their CSR round trips. Their usages are therefore "digital signature" and "client auth" (no key
// encipherment: that is RSA's).

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CertificateSigningRequest, KeyUsage } from "../api/certificates/v1.ts";
import { KubeAPIServerClientKubeletSignerName } from "../api/certificates/v1.ts";
import { isAlreadyExists } from "../client/errors.ts";
import { newInformer, realClock, type Client, type Clock, type Context, type ListWatchInformer, type Logger } from "../client/index.ts";
import { RestClient } from "../client/rest.ts";
import { createCertificateRequest } from "../controllers/certificates/x509.ts";

const CSR_GROUP = "certificates.k8s.io";
const CSR_RESOURCE = "certificatesigningrequests";
/** The usages of an ECDSA kubelet client certificate (upstream's kubelet drops key encipherment for non-RSA keys). */
export const NODE_CLIENT_USAGES: KeyUsage[] = ["digital signature", "client auth"];

export interface NodeCredential {
  /** PEM of the certificate (the chain the signer returned). */
  cert: string;
  /** PEM (PKCS#8) of its private key. */
  key: string;
  notBeforeMs: number;
  notAfterMs: number;
}

export function nodeSubject(nodeName: string): { commonName: string; organizations: string[] } {
  return { commonName: `system:node:${nodeName}`, organizations: ["system:nodes"] };
}

/**
 * upstream's digestedName: "node-csr-" + the unpadded base64url SHA-512/256 of the public key, the
 * subject and the usages, each base64url'd and '|'-terminated. The same key and subject give the same
 * name, so a pool restarted mid-bootstrap finds its earlier request instead of piling up new ones.
 */
export function digestedCSRName(publicKeyDer: Buffer, subject: { commonName: string; organizations: string[] }, usages: readonly string[]): string {
  const h = createHash("sha512-256");
  const write = (b: Buffer | string): void => {
    h.update(Buffer.from(b).toString("base64url"));
    h.update("|");
  };
  write(publicKeyDer);
  write(subject.commonName);
  for (const o of subject.organizations) write(o);
  for (const u of usages) write(u);
  return `node-csr-${h.digest().toString("base64url")}`;
}

/** The credential in `cert`/`key` PEMs when they are this node's, fit together and are valid at `nowMs`; else undefined. */
export function validCredential(nodeName: string, certPem: string, keyPem: string, nowMs: number): NodeCredential | undefined {
  try {
    const cert = new X509Certificate(certPem);
    const want = nodeSubject(nodeName);
    if (cert.subject !== `O=${want.organizations[0]}\nCN=${want.commonName}`) return undefined;
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return undefined;
    const notBeforeMs = Date.parse(cert.validFrom);
    const notAfterMs = Date.parse(cert.validTo);
    if (nowMs >= notAfterMs) return undefined;
    return { cert: certPem, key: keyPem, notBeforeMs, notAfterMs };
  } catch {
    return undefined;
  }
}

const MAX_SLEEP_MS = 24 * 3600_000;

/** The certificate manager's nextRotationDeadline: a jittered 70–90% of the way from notBefore to notAfter. */
export function rotationDeadline(cred: Pick<NodeCredential, "notBeforeMs" | "notAfterMs">, rand = Math.random()): number {
  const total = cred.notAfterMs - cred.notBeforeMs;
  return cred.notBeforeMs + total * (0.7 + 0.2 * rand);
}

export class CertificateRequestError extends Error {
  override readonly name = "CertificateRequestError";
}

function failure(csr: Readonly<CertificateSigningRequest>): Error | undefined {
  for (const c of csr.status?.conditions ?? []) {
    if ((c.status ?? "True") !== "True") continue;
    if (c.type === "Denied") return new CertificateRequestError(`certificate signing request is denied, reason: ${c.reason ?? ""}, message: ${c.message ?? ""}`);
    if (c.type === "Failed") return new CertificateRequestError(`certificate signing request failed, reason: ${c.reason ?? ""}, message: ${c.message ?? ""}`);
  }
  return undefined;
}

/** The issued PEM, or a failure, or undefined while the request is pending. */
function outcome(csr: Readonly<CertificateSigningRequest>): string | Error | undefined {
  const f = failure(csr);
  if (f) return f;
  return csr.status?.certificate ? Buffer.from(csr.status.certificate, "base64").toString("utf8") : undefined;
}

/**
 * Creates the CSR for `key` through `client` (client-go's csr.RequestCertificate), or finds the one
 * an earlier run of this pool created for the same key; returns its name.
 */
export async function createNodeCSR(client: Client, nodeName: string, key: KeyObject, opts: { expirationSeconds?: number } = {}): Promise<string> {
  const subject = nodeSubject(nodeName);
  const request = Buffer.from(createCertificateRequest(subject, key)).toString("base64");
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  const name = digestedCSRName(spki, subject, NODE_CLIENT_USAGES);
  const csrs = client.resource<CertificateSigningRequest>(CSR_GROUP, CSR_RESOURCE);
  const obj: CertificateSigningRequest = {
    apiVersion: "certificates.k8s.io/v1",
    kind: "CertificateSigningRequest",
    metadata: { name },
    spec: { request, signerName: KubeAPIServerClientKubeletSignerName, usages: [...NODE_CLIENT_USAGES], ...(opts.expirationSeconds ? { expirationSeconds: opts.expirationSeconds } : {}) },
  };
  try {
    await csrs.create("", obj);
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
    // client-go's ensureCompatible: the one there must be this very request (same key, so the same CSR bytes are not required).
    const have = await csrs.get("", name);
    if (have.spec.signerName !== obj.spec.signerName || (have.spec.usages ?? []).join(",") !== NODE_CLIENT_USAGES.join(",")) {
      throw new CertificateRequestError(`retrieved csr ${name} is not compatible`);
    }
  }
  return name;
}

interface Waiter {
  settle(r: string | Error): void;
}

/**
 * Waits for CSRs to be issued, on one watch for the whole pool (client-go's csr.WaitForCertificate
 * watches each request alone; a thousand nodes would hold a thousand watches). The pool's bootstrap
 * identity may list and watch every CSR (system:node-bootstrapper).
 */
export class CSRWaiter {
  readonly informer: ListWatchInformer<CertificateSigningRequest>;
  private readonly waiters = new Map<string, Set<Waiter>>();

  constructor(client: Client, opts: { clock?: Clock; log: Logger }) {
    this.informer = newInformer<CertificateSigningRequest>(client, CSR_GROUP, CSR_RESOURCE, { clock: opts.clock, log: opts.log });
    const check = (csr: Readonly<CertificateSigningRequest>): void => {
      const r = outcome(csr);
      if (r !== undefined) this.settle(csr.metadata.name ?? "", r);
    };
    this.informer.addEventHandler({
      onAdd: check,
      onUpdate: (_old, csr) => check(csr),
      onDelete: (csr) => this.settle(csr.metadata.name ?? "", new CertificateRequestError(`csr ${csr.metadata.name ?? ""} was deleted before its certificate was issued`)),
    });
  }

  run(ctx: Context): Promise<void> {
    return this.informer.run(ctx);
  }

  private settle(name: string, r: string | Error): void {
    const ws = this.waiters.get(name);
    if (!ws) return;
    this.waiters.delete(name);
    for (const w of ws) w.settle(r);
  }

  /** The issued PEM of CSR `name`; rejects when it is Denied, Failed or deleted, or when `signal` aborts. */
  async wait(name: string, signal: AbortSignal): Promise<string> {
    await this.informer.waitForSync(signal);
    return new Promise<string>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.get(name)?.delete(w);
        reject(signal.reason ?? new Error("aborted"));
      };
      const w: Waiter = {
        settle: (r) => {
          signal.removeEventListener("abort", onAbort);
          if (r instanceof Error) reject(r);
          else resolve(r);
        },
      };
      if (signal.aborted) return onAbort();
      // No await between the cache read and the registration: no event can slip between them.
      const have = this.informer.lister.get(name);
      const r = have ? outcome(have) : undefined;
      if (r !== undefined) return w.settle(r);
      let ws = this.waiters.get(name);
      if (!ws) this.waiters.set(name, (ws = new Set()));
      ws.add(w);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** At most `n` at a time of what goes through it (the pool's CSR creations). */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

/** What a node's client must allow beyond Client: swapping its certificate, and closing. */
export interface NodeClient extends Client {
  setClientCertificate?(cert: string, key: string): void;
  close?(): void;
}

export interface NodeClientSourceOptions {
  /** The pool's own client (its bootstrap identity): creates and watches the first CSRs. */
  bootstrapClient: Client;
  /** <root-dir>/pki: <node>.key and <node>.crt, mode 0600. */
  dir: string;
  /** The apiserver the nodes' own clients talk to (server URL, CA); credentials come from here. */
  server?: { server: string; caCert?: string; insecure?: boolean };
  /** Builds a node's client for its credential; default a RestClient with 2 connections at most (a thousand nodes per process). */
  newClient?: (cred: NodeCredential, nodeName: string) => NodeClient;
  /** spec.expirationSeconds of the requests (unset: the signer's default). */
  expirationSeconds?: number;
  /** CSRs created at once at most (default 16): a pool of hundreds of nodes does not burst them all. */
  maxConcurrentRequests?: number;
  clock?: Clock;
  log: Logger;
}

/**
 * Gives each node of a pool its own client, bootstrapping its certificate on first use and rotating
 * it in the background until the node's client is closed. run() must run (it holds the pool's one
 * watch on CSRs) for a request to be seen issued.
 */
export class NodeClientSource {
  private readonly clock: Clock;
  private readonly waiter: CSRWaiter;
  private readonly limiter: Limiter;

  constructor(private readonly opts: NodeClientSourceOptions) {
    this.clock = opts.clock ?? realClock;
    this.waiter = new CSRWaiter(opts.bootstrapClient, { clock: opts.clock, log: opts.log });
    this.limiter = new Limiter(Math.max(1, opts.maxConcurrentRequests ?? 16));
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  }

  /** Watches the CSRs until ctx aborts. */
  run(ctx: Context): Promise<void> {
    return this.waiter.run(ctx);
  }

  private files(nodeName: string): { certFile: string; keyFile: string } {
    return { certFile: join(this.opts.dir, `${nodeName}.crt`), keyFile: join(this.opts.dir, `${nodeName}.key`) };
  }

  /** The node's credential on disk when it is still valid (a restart keeps its identity). */
  load(nodeName: string): NodeCredential | undefined {
    const { certFile, keyFile } = this.files(nodeName);
    if (!existsSync(certFile) || !existsSync(keyFile)) return undefined;
    return validCredential(nodeName, readFileSync(certFile, "utf8"), readFileSync(keyFile, "utf8"), this.clock.now());
  }

  private store(nodeName: string, cred: NodeCredential): void {
    const { certFile, keyFile } = this.files(nodeName);
    // Written beside and renamed: no file is ever half written. A crash between the renames leaves a
    // pair that does not match, which load() refuses (the node then bootstraps again).
    const tmp = `.${randomBytes(4).toString("hex")}.tmp`;
    writeFileSync(keyFile + tmp, cred.key, { mode: 0o600 });
    writeFileSync(certFile + tmp, cred.cert, { mode: 0o600 });
    renameSync(keyFile + tmp, keyFile);
    renameSync(certFile + tmp, certFile);
  }

  /** A new key, a CSR through `client`, the issued certificate checked and stored. */
  async obtain(client: Client, nodeName: string, signal: AbortSignal): Promise<NodeCredential> {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const name = await this.limiter.run(async () => {
      signal.throwIfAborted();
      return createNodeCSR(client, nodeName, privateKey, { expirationSeconds: this.opts.expirationSeconds });
    });
    const cert = await this.waiter.wait(name, signal);
    const key = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const cred = validCredential(nodeName, cert, key, this.clock.now());
    if (!cred) throw new CertificateRequestError(`the certificate issued for ${nodeName} is not a valid client certificate for its key and name`);
    this.store(nodeName, cred);
    return cred;
  }

  /**
   * The node's client: from its stored certificate, or after bootstrapping one (waits for approval
   * and signing, as a kubelet does at startup). Rotation runs until close().
   */
  async clientFor(nodeName: string, signal: AbortSignal): Promise<{ client: NodeClient; close(): void }> {
    const log = this.opts.log.child({ node: nodeName });
    let cred = this.load(nodeName);
    if (!cred) {
      cred = await this.obtain(this.opts.bootstrapClient, nodeName, signal);
      log.info({ notAfter: new Date(cred.notAfterMs).toISOString() }, "node client certificate bootstrapped");
    }
    const client = this.newClient(cred, nodeName);
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    void this.rotate(nodeName, cred, client, stop.signal, log);
    return {
      client,
      close: () => {
        signal.removeEventListener("abort", onAbort);
        stop.abort();
        client.close?.();
      },
    };
  }

  /**
   * clientFor, tried again until it works or `signal` aborts (a kubelet whose bootstrap failed exits
   * and its service manager starts it again): a denied or failed request, an apiserver away.
   */
  async clientForRetrying(nodeName: string, signal: AbortSignal): Promise<{ client: NodeClient; close(): void }> {
    let backoffMs = 2000;
    for (;;) {
      try {
        return await this.clientFor(nodeName, signal);
      } catch (e) {
        if (signal.aborted) throw e;
        this.opts.log.warn({ node: nodeName, err: (e as Error).message, retryInMs: backoffMs }, "failed to bootstrap the node client certificate");
        await this.clock.sleep(backoffMs, signal);
        signal.throwIfAborted();
        backoffMs = Math.min(backoffMs * 2, 60_000);
      }
    }
  }

  private newClient(cred: NodeCredential, nodeName: string): NodeClient {
    if (this.opts.newClient) return this.opts.newClient(cred, nodeName);
    if (!this.opts.server) throw new Error("NodeClientSource: server or newClient is required");
    return new RestClient({ ...this.opts.server, clientCert: cred.cert, clientKey: cred.key, maxConnections: 2, userAgent: `kubelab-kubelet/${nodeName}` });
  }

  /** Renews at the jittered deadline, with the node's own identity while it holds, else the pool's; failures retry with backoff. */
  private async rotate(nodeName: string, cred: NodeCredential, client: NodeClient, signal: AbortSignal, log: Logger): Promise<void> {
    let backoffMs = 1000;
    let current = cred;
    let deadline = rotationDeadline(current);
    while (!signal.aborted) {
      const wait = deadline - this.clock.now();
      if (wait > 0) {
        // In steps of a day at most: a timer over 2^31-1 ms (24.8 days) fires at once.
        await this.clock.sleep(Math.min(wait, MAX_SLEEP_MS), signal);
        continue;
      }
      try {
        const via = this.clock.now() < current.notAfterMs ? client : this.opts.bootstrapClient;
        const next = await this.obtain(via, nodeName, signal);
        client.setClientCertificate?.(next.cert, next.key);
        current = next;
        deadline = rotationDeadline(current);
        backoffMs = 1000;
        log.info({ notAfter: new Date(next.notAfterMs).toISOString() }, "node client certificate rotated");
      } catch (e) {
        if (signal.aborted) return;
        log.warn({ err: (e as Error).message, retryInMs: backoffMs }, "failed to rotate the node client certificate");
        await this.clock.sleep(backoffMs, signal);
        backoffMs = Math.min(backoffMs * 2, 5 * 60_000);
      }
    }
  }
}
