// What a ServiceAccount token says and how the apiserver checks it still holds (upstream
// pkg/serviceaccount/claims.go and legacy.go): the claims issued by TokenRequest and by the legacy
// tokens controller, and the validators that look the service account and bound objects up again.

import { randomUUID } from "node:crypto";
import type { KubeObject, Pod, Secret, ServiceAccount } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import { DEFAULT_LEEWAY_SECONDS, validateTimes, type PublicClaims } from "./jwt.ts";

/** upstream's WarnOnlyBoundTokenExpirationSeconds: the lifetime the admission plugin asks for in projected tokens. */
export const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7;
/** upstream's ExpirationExtensionSeconds: how long such a token really lives (--service-account-extend-token-expiration). */
export const EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60;

/** The issuer of secret-based tokens (serviceaccount.LegacyIssuer). */
export const LEGACY_ISSUER = "kubernetes/serviceaccount";

export const SERVICE_ACCOUNT_USERNAME_PREFIX = "system:serviceaccount:";
export const ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts";

/** user.Info extra keys of ServiceAccount users (k8s.io/apiserver/pkg/authentication/serviceaccount). */
export const POD_NAME_KEY = "authentication.kubernetes.io/pod-name";
export const POD_UID_KEY = "authentication.kubernetes.io/pod-uid";
export const NODE_NAME_KEY = "authentication.kubernetes.io/node-name";
export const NODE_UID_KEY = "authentication.kubernetes.io/node-uid";
export const CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id";

/** Secret keys and annotations of legacy token Secrets (core/v1 constants). */
export const SERVICE_ACCOUNT_TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token";
export const SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name";
export const SERVICE_ACCOUNT_UID_KEY = "kubernetes.io/service-account.uid";
export const SERVICE_ACCOUNT_TOKEN_KEY = "token";
export const SERVICE_ACCOUNT_ROOT_CA_KEY = "ca.crt";
export const SERVICE_ACCOUNT_NAMESPACE_KEY = "namespace";
/** The label the legacy token cleaner sets on a token it has invalidated. */
export const LEGACY_TOKEN_INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since";

export function makeUsername(namespace: string, name: string): string {
  return `${SERVICE_ACCOUNT_USERNAME_PREFIX}${namespace}:${name}`;
}

export function makeGroupNames(namespace: string): string[] {
  return [ALL_SERVICE_ACCOUNTS_GROUP, `${ALL_SERVICE_ACCOUNTS_GROUP}:${namespace}`];
}

/** `system:serviceaccount:<ns>:<name>` → [ns, name]; undefined for any other user name. */
export function splitUsername(username: string): [string, string] | undefined {
  if (!username.startsWith(SERVICE_ACCOUNT_USERNAME_PREFIX)) return undefined;
  const parts = username.slice(SERVICE_ACCOUNT_USERNAME_PREFIX.length).split(":");
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return [parts[0], parts[1]];
}

interface Ref {
  name: string;
  uid: string;
}

/** The private "kubernetes.io" claim of a bound token. */
export interface KubernetesClaim {
  namespace: string;
  serviceaccount: Ref;
  pod?: Ref;
  secret?: Ref;
  node?: Ref;
  /** NumericDate after which a (pod-bound, extended) token is stale but still accepted. */
  warnafter?: number;
}

/** The legacy token's flat private claims (legacyPrivateClaims). */
export interface LegacyPrivateClaims {
  "kubernetes.io/serviceaccount/namespace": string;
  "kubernetes.io/serviceaccount/secret.name": string;
  "kubernetes.io/serviceaccount/service-account.name": string;
  "kubernetes.io/serviceaccount/service-account.uid": string;
}

/** A bound object as TokenRequest resolved it. */
export type BoundObject = Pick<KubeObject, "metadata">;

/**
 * upstream's Claims: sub, aud, iat, nbf, exp (now + expirationSeconds), a fresh jti, and the
 * kubernetes.io claim naming the service account and at most one bound object — a pod (with the
 * node it runs on when known), a secret, or a node.
 */
export function serviceAccountClaims(
  sa: ServiceAccount,
  bound: { pod?: BoundObject; secret?: BoundObject; node?: BoundObject },
  expirationSeconds: number,
  warnAfterSeconds: number,
  audiences: string[],
  now: Date,
): { claims: PublicClaims; private: { "kubernetes.io": KubernetesClaim } } {
  if (bound.secret && (bound.pod || bound.node)) throw new Error("internal error, token can only be bound to one object type");
  const t = Math.floor(now.getTime() / 1000);
  const ns = sa.metadata.namespace ?? "";
  const claims: PublicClaims = { aud: audiences, exp: t + expirationSeconds, iat: t, jti: randomUUID(), nbf: t, sub: makeUsername(ns, sa.metadata.name ?? "") };
  const k: KubernetesClaim = { namespace: ns, serviceaccount: ref(sa) };
  if (bound.pod) {
    k.pod = ref(bound.pod);
    if (bound.node) k.node = ref(bound.node);
  } else if (bound.secret) k.secret = ref(bound.secret);
  else if (bound.node) k.node = ref(bound.node);
  if (warnAfterSeconds) k.warnafter = t + warnAfterSeconds;
  return { claims, private: { "kubernetes.io": k } };
}

function ref(o: BoundObject): Ref {
  return { name: o.metadata.name ?? "", uid: o.metadata.uid ?? "" };
}

/** upstream's LegacyClaims: no audience, no expiry; the secret that holds the token is named in it. */
export function legacyClaims(sa: ServiceAccount, secret: Secret): { claims: PublicClaims; private: LegacyPrivateClaims } {
  const ns = sa.metadata.namespace ?? "";
  return {
    claims: { sub: makeUsername(ns, sa.metadata.name ?? "") },
    private: {
      "kubernetes.io/serviceaccount/namespace": ns,
      "kubernetes.io/serviceaccount/secret.name": secret.metadata.name ?? "",
      "kubernetes.io/serviceaccount/service-account.name": sa.metadata.name ?? "",
      "kubernetes.io/serviceaccount/service-account.uid": sa.metadata.uid ?? "",
    },
  };
}

/**
 * Reads the objects a token refers to (upstream's ServiceAccountTokenGetter). Each resolves
 * undefined when the object does not exist; other failures reject.
 */
export interface ServiceAccountTokenGetter {
  getServiceAccount(namespace: string, name: string): Promise<ServiceAccount | undefined>;
  getPod(namespace: string, name: string): Promise<Pod | undefined>;
  getSecret(namespace: string, name: string): Promise<Secret | undefined>;
  getNode(name: string): Promise<KubeObject | undefined>;
}

/** Who a valid token is (ServiceAccountInfo). */
export interface ServiceAccountInfo {
  namespace: string;
  name: string;
  uid: string;
  podName?: string;
  podUID?: string;
  nodeName?: string;
  nodeUID?: string;
  credentialID?: string;
}

/** ServiceAccountInfo.UserInfo(). */
export function userInfoFor(sa: ServiceAccountInfo): UserInfo {
  const extra: Record<string, string[]> = {};
  if (sa.podName && sa.podUID) {
    extra[POD_NAME_KEY] = [sa.podName];
    extra[POD_UID_KEY] = [sa.podUID];
  }
  if (sa.credentialID) extra[CREDENTIAL_ID_KEY] = [sa.credentialID];
  if (sa.nodeName) {
    extra[NODE_NAME_KEY] = [sa.nodeName];
    if (sa.nodeUID) extra[NODE_UID_KEY] = [sa.nodeUID];
  }
  return { name: makeUsername(sa.namespace, sa.name), uid: sa.uid, groups: makeGroupNames(sa.namespace), ...(Object.keys(extra).length ? { extra } : {}) };
}

/** A token's claims that passed signature and issuer checks, judged against the cluster's current state. */
export interface Validator {
  validate(token: string, claims: PublicClaims & Record<string, unknown>): Promise<ServiceAccountInfo>;
}

/** Thrown by validators: the message is what a 401 (or a TokenReview's status.error) says. */
export class TokenValidationError extends Error {
  override readonly name = "TokenValidationError";
}

function deletedBefore(obj: KubeObject, cutoffMs: number): boolean {
  const ts = obj.metadata.deletionTimestamp;
  return !!ts && Date.parse(ts) < cutoffMs;
}

/**
 * upstream's validator for bound (TokenRequest) tokens: the times with jwt's leeway, then the
 * service account (same uid, not deleted) and the bound secret, pod or node must still exist with
 * the uid the token names. Something deleted more than the leeway ago invalidates it: a pod being
 * deleted keeps its tokens for its grace period plus a minute, a pod that is gone does not.
 */
export function newValidator(getter: ServiceAccountTokenGetter, now: () => Date = () => new Date()): Validator {
  return {
    async validate(_token, c) {
      const nowDate = now();
      switch (validateTimes(c, Math.floor(nowDate.getTime() / 1000))) {
        case "expired":
          throw new TokenValidationError("service account token has expired");
        case "not valid yet":
          throw new TokenValidationError("service account token is not valid yet");
        case "issued in the future":
          throw new TokenValidationError("service account token is issued in the future");
      }
      const k = c["kubernetes.io"] as Partial<KubernetesClaim> | undefined;
      if (!k || typeof k !== "object") throw new TokenValidationError("service account token claims could not be validated due to unexpected private claim");
      const cutoff = nowDate.getTime() - DEFAULT_LEEWAY_SECONDS * 1000;
      const namespace = k.namespace ?? "";
      const saref = k.serviceaccount ?? { name: "", uid: "" };
      const sa = await getter.getServiceAccount(namespace, saref.name);
      if (!sa) throw new TokenValidationError(`serviceaccounts "${saref.name}" not found`);
      if ((sa.metadata.uid ?? "") !== saref.uid) throw new TokenValidationError(`service account UID (${sa.metadata.uid}) does not match claim (${saref.uid})`);
      if (deletedBefore(sa, cutoff)) throw new TokenValidationError(`service account ${namespace}/${saref.name} has been deleted`);

      if (k.secret) {
        const secret = await getter.getSecret(namespace, k.secret.name);
        if (!secret || deletedBefore(secret, cutoff)) throw new TokenValidationError("service account token has been invalidated");
        if (k.secret.uid !== secret.metadata.uid) throw new TokenValidationError(`secret UID (${secret.metadata.uid}) does not match service account secret ref claim (${k.secret.uid})`);
      }
      const info: ServiceAccountInfo = { namespace, name: saref.name, uid: saref.uid };
      if (k.pod) {
        const pod = await getter.getPod(namespace, k.pod.name);
        if (!pod || deletedBefore(pod, cutoff)) throw new TokenValidationError("service account token has been invalidated");
        if (k.pod.uid !== pod.metadata.uid) throw new TokenValidationError(`pod UID (${pod.metadata.uid}) does not match service account pod ref claim (${k.pod.uid})`);
        info.podName = k.pod.name;
        info.podUID = k.pod.uid;
      }
      if (k.node) {
        if (k.pod) {
          // A pod-bound token names its node for information only: the pod is what binds it.
          info.nodeName = k.node.name;
          info.nodeUID = k.node.uid;
        } else {
          const node = await getter.getNode(k.node.name);
          if (!node) throw new TokenValidationError("service account token has been invalidated");
          if (k.node.uid !== node.metadata.uid) throw new TokenValidationError(`node UID (${node.metadata.uid}) does not match service account node ref claim (${k.node.uid})`);
          if (deletedBefore(node, cutoff)) throw new TokenValidationError("service account token has been invalidated");
          info.nodeName = k.node.name;
          info.nodeUID = k.node.uid;
        }
      }
      if (typeof c.jti === "string" && c.jti) info.credentialID = `JTI=${c.jti}`;
      return info;
    },
  };
}

function b64decode(v: string | undefined): string {
  return v === undefined ? "" : Buffer.from(v, "base64").toString("utf8");
}

/**
 * upstream's legacy validator: a secret-based token is valid while its Secret exists, is not being
 * deleted, is not marked invalid, holds exactly this token, and its service account still exists
 * with the uid in the token.
 */
export function newLegacyValidator(getter: ServiceAccountTokenGetter): Validator {
  return {
    async validate(token, c) {
      const p = c as Partial<LegacyPrivateClaims> & PublicClaims;
      if (!p.sub) throw new TokenValidationError("sub claim is missing");
      const namespace = p["kubernetes.io/serviceaccount/namespace"];
      if (!namespace) throw new TokenValidationError("namespace claim is missing");
      const secretName = p["kubernetes.io/serviceaccount/secret.name"];
      if (!secretName) throw new TokenValidationError("secretName claim is missing");
      const saName = p["kubernetes.io/serviceaccount/service-account.name"];
      if (!saName) throw new TokenValidationError("serviceAccountName claim is missing");
      const saUID = p["kubernetes.io/serviceaccount/service-account.uid"];
      if (!saUID) throw new TokenValidationError("serviceAccountUID claim is missing");
      const subject = splitUsername(p.sub);
      if (!subject || subject[0] !== namespace || subject[1] !== saName) throw new TokenValidationError("sub claim is invalid");

      const secret = await getter.getSecret(namespace, secretName);
      if (!secret || secret.metadata.deletionTimestamp) throw new TokenValidationError("token has been invalidated");
      if (secret.metadata.labels?.[LEGACY_TOKEN_INVALID_SINCE_LABEL]) {
        throw new TokenValidationError(
          `the token in secret ${namespace}/${secretName} for service account ${namespace}/${saName} has been marked invalid. Use tokens from the TokenRequest API or manually created secret-based tokens, or remove the '${LEGACY_TOKEN_INVALID_SINCE_LABEL}' label from the secret to regain access`,
        );
      }
      if (b64decode(secret.data?.[SERVICE_ACCOUNT_TOKEN_KEY]) !== token) throw new TokenValidationError("token does not match server's copy");
      const sa = await getter.getServiceAccount(namespace, saName);
      if (!sa) throw new TokenValidationError(`serviceaccounts "${saName}" not found`);
      if (sa.metadata.deletionTimestamp) throw new TokenValidationError(`ServiceAccount ${namespace}/${saName} has been deleted`);
      if (sa.metadata.uid !== saUID) throw new TokenValidationError(`ServiceAccount UID (${sa.metadata.uid}) does not match claim (${saUID})`);
      return { namespace, name: saName, uid: saUID };
    },
  };
}
