// The kubelet's ServiceAccount token manager (upstream pkg/kubelet/token/token_manager.go): asks the
// TokenRequest API (POST serviceaccounts/<sa>/token) for pod-bound tokens through the node's own
// client, caches them per (service account, namespace, audiences, expirationSeconds, bound object),
// and hands out the cached token until it needs a refresh (older than 80% of its TTL or 24 h, with
// up to 10 s of jitter so a node's tokens do not all renew in the same second).

import { RESOURCES } from "../api/index.ts";
import { RestClient, resourcePath, type Client, type Clock, type Logger } from "../client/index.ts";

// authentication.k8s.io/v1 TokenRequest, declared here until api/authentication/v1.ts has it (the
// same JSON shape as upstream's).

/** authenticationv1.BoundObjectReference */
export interface BoundObjectReference {
  kind?: string;
  apiVersion?: string;
  name?: string;
  uid?: string;
}

/** authenticationv1.TokenRequestSpec */
export interface TokenRequestSpec {
  audiences?: string[];
  expirationSeconds?: number;
  boundObjectRef?: BoundObjectReference;
}

/** authenticationv1.TokenRequest (the body of POST serviceaccounts/<name>/token and its answer). */
export interface TokenRequest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string };
  spec: TokenRequestSpec;
  status?: { token: string; expirationTimestamp: string };
}

/**
 * Creates a token for ServiceAccount `name` in `namespace` (POST .../serviceaccounts/<name>/token).
 * Rejects with the API error (a ClientError) when the apiserver refuses.
 */
export type TokenRequester = (namespace: string, name: string, request: TokenRequest) => Promise<TokenRequest>;

/** A Client that can create ServiceAccount tokens itself (client-go's ServiceAccounts(ns).CreateToken). */
interface TokenClient {
  createToken(namespace: string, name: string, request: TokenRequest): Promise<TokenRequest>;
}

function hasCreateToken(c: Client): c is Client & TokenClient {
  return typeof (c as Partial<TokenClient>).createToken === "function";
}

/**
 * The TokenRequester of a Client: its `createToken` when it has one, else a POST through a
 * RestClient. Any other client answers every request with an error, which the volume manager turns
 * into FailedMount, as upstream's standalone kubelet does.
 */
export function clientTokenRequester(client: Client): TokenRequester {
  if (hasCreateToken(client)) return (ns, name, tr) => client.createToken(ns, name, tr);
  if (client instanceof RestClient) {
    const info = RESOURCES.find((r) => r.group === "" && r.resource === "serviceaccounts");
    if (!info) throw new Error("serviceaccounts missing from the resource catalogue");
    return (ns, name, tr) =>
      client.requestJSON<TokenRequest>({
        method: "POST",
        path: resourcePath(info, ns, name, "token"),
        body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", ...tr }),
      });
  }
  return () => Promise.reject(new Error("cannot use TokenManager: the kubelet's client cannot create service account tokens"));
}

/** upstream's maxTTL: a token is refreshed once it is a day old, whatever its lifetime. */
export const MAX_TTL_MS = 24 * 60 * 60 * 1000;
/** upstream's gcPeriod: expired tokens are dropped from the cache this often (checked on use). */
export const GC_PERIOD_MS = 60 * 1000;
/** upstream's maxJitter. */
export const MAX_JITTER_MS = 10 * 1000;

export interface TokenManagerOptions {
  clock?: Pick<Clock, "now">;
  /** [0, 1) source for the refresh jitter; tests pin it. */
  random?: () => number;
  log?: Logger;
}

/**
 * Pod-bound ServiceAccount tokens for the pods of one node. Never throws for a refresh failure while
 * the cached token is still valid (the old token keeps working until it expires); a token that
 * cannot be fetched at all is an Error whose message starts with "failed to fetch token: ".
 */
export class TokenManager {
  private readonly cache = new Map<string, TokenRequest>();
  /** One request per key at a time: a pod's setUp and its periodic refresh may overlap. */
  private readonly inflight = new Map<string, Promise<TokenRequest>>();
  private readonly now: () => number;
  private readonly random: () => number;
  private lastCleanup: number;

  constructor(
    private readonly requestToken: TokenRequester,
    private readonly opts: TokenManagerOptions = {},
  ) {
    const clock = opts.clock;
    this.now = clock ? () => clock.now() : Date.now;
    this.random = opts.random ?? Math.random;
    this.lastCleanup = this.now();
  }

  /**
   * The token for `tr` from the cache, or a new one from the TokenRequest API when there is none or
   * it requires a refresh. When the refresh fails the cached token is returned while it is valid.
   */
  async getServiceAccountToken(namespace: string, name: string, tr: TokenRequest): Promise<TokenRequest> {
    if (this.now() - this.lastCleanup >= GC_PERIOD_MS) this.cleanup();
    const key = keyFunc(name, namespace, tr);
    const cached = this.cache.get(key);
    if (cached && !this.requiresRefresh(cached)) return cached;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.fetch(key, namespace, name, tr);
      this.inflight.set(key, pending);
      void pending.then(
        () => this.inflight.delete(key),
        () => this.inflight.delete(key),
      );
    }
    try {
      return await pending;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (!cached) throw new Error(`failed to fetch token: ${msg}`, { cause: e });
      if (this.expired(cached)) throw new Error(`token ${key} expired and refresh failed: ${msg}`, { cause: e });
      this.opts.log?.error({ err: e, cacheKey: key }, "Couldn't update token");
      return cached;
    }
  }

  /** Forgets every token bound to the pod (called when the pod is gone from the node). */
  deleteServiceAccountToken(podUID: string): void {
    for (const [k, tr] of this.cache) if (tr.spec.boundObjectRef?.uid === podUID) this.cache.delete(k);
  }

  /** Drops expired tokens (upstream runs this every gcPeriod; here it runs on use). */
  cleanup(): void {
    this.lastCleanup = this.now();
    for (const [k, tr] of this.cache) if (this.expired(tr)) this.cache.delete(k);
  }

  /** Number of cached tokens (for tests and metrics). */
  size(): number {
    return this.cache.size;
  }

  private async fetch(key: string, namespace: string, name: string, tr: TokenRequest): Promise<TokenRequest> {
    const answer = await this.requestToken(namespace, name, tr);
    if (!answer.status?.token || !answer.status.expirationTimestamp || Number.isNaN(Date.parse(answer.status.expirationTimestamp))) {
      throw new Error("the TokenRequest answer has no token or expiration timestamp");
    }
    // The answer's spec is what the apiserver issued (it may differ from the request); a server that
    // leaves fields out is taken to have granted what was asked.
    const issued: TokenRequest = { ...answer, spec: { ...tr.spec, ...answer.spec, boundObjectRef: answer.spec?.boundObjectRef ?? tr.spec.boundObjectRef } };
    this.cache.set(key, issued);
    return issued;
  }

  private expired(tr: TokenRequest): boolean {
    return this.now() > Date.parse(tr.status?.expirationTimestamp ?? "");
  }

  /**
   * upstream's requiresRefresh: older than 24 h, within 20% of its TTL (plus jitter) of expiring, or
   * issued "in the future" (the clock leapt back).
   */
  requiresRefresh(tr: TokenRequest): boolean {
    const seconds = tr.spec.expirationSeconds;
    if (seconds === undefined) {
      this.opts.log?.error({ tokenRequest: { ...tr, status: { ...tr.status, token: "" } } }, "Expiration seconds was nil for token request");
      return false;
    }
    const now = this.now();
    const exp = Date.parse(tr.status?.expirationTimestamp ?? "");
    const iat = exp - seconds * 1000;
    // time.Duration(rand.Float64()*maxJitter.Seconds()) * time.Second: whole seconds.
    const jitter = Math.trunc(this.random() * (MAX_JITTER_MS / 1000)) * 1000;
    if (now > iat + MAX_TTL_MS - jitter) return true;
    if (now > exp - Math.trunc((seconds * 20) / 100) * 1000 - jitter) return true;
    return now < iat;
  }
}

/** The cache key: not confidential, safe to log (upstream's keyFunc). */
function keyFunc(name: string, namespace: string, tr: TokenRequest): string {
  const ref = tr.spec.boundObjectRef ?? {};
  return JSON.stringify([name, namespace, tr.spec.audiences ?? [], tr.spec.expirationSeconds ?? 0, [ref.kind ?? "", ref.apiVersion ?? "", ref.name ?? "", ref.uid ?? ""]]);
}
