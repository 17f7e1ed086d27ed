// POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token (upstream
// pkg/registry/core/serviceaccount/storage/token.go): issues a JWT for the service account, for
// the audiences asked, optionally bound to a Pod, Secret or Node so that it dies with that object.

import type { KubeObject, Pod, ServiceAccount } from "../../api/index.ts";
import type { TokenRequest } from "../../api/authentication/v1.ts";
import { checkNodeTokenRequest } from "../admission/noderestriction.ts";
import { errors } from "../errors.ts";
import type { Registry, SubresourceCreate } from "../registry/registry.ts";
import { rfc3339 } from "../registry/store.ts";
import { EXPIRATION_EXTENSION_SECONDS, WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS, serviceAccountClaims, type BoundObject } from "./claims.ts";
import type { TokenGenerator } from "./jwt.ts";

/** SetDefaults_TokenRequestSpec: an hour. */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 60 * 60;
/** ValidateTokenRequest's lower bound (10 minutes) and upper bound (2^32 seconds). */
export const MIN_TOKEN_EXPIRATION_SECONDS = 10 * 60;
export const MAX_TOKEN_EXPIRATION_SECONDS = 2 ** 32;

export interface TokenRequestOptions {
  /** Signs with the first --service-account-issuer and --service-account-signing-key-file. */
  generator: TokenGenerator;
  /** --api-audiences: the audiences of a request that names none. */
  apiAudiences: readonly string[];
  /** --service-account-max-token-expiration in seconds; 0 = no cap. */
  maxExpirationSeconds: number;
  /**
   * --service-account-extend-token-expiration (default true): a pod-bound token asked for with the
   * admission plugin's 3607 s for the apiserver's audiences lives a year (or the max expiration
   * when that is longer), with `warnafter` at 3607 s, so that a client that does not reread its
   * token keeps working.
   */
  extendExpiration: boolean;
  now?: () => Date;
}

const GROUP_KIND = { group: "authentication.k8s.io", kind: "TokenRequest" };

function invalid(name: string, field: string, value: unknown, detail: string): Error {
  return errors.invalid(GROUP_KIND.group, GROUP_KIND.kind, name, [
    { field, type: "FieldValueInvalid", message: `${field}: Invalid value: ${JSON.stringify(value)}: ${detail}`, cause: `Invalid value: ${JSON.stringify(value)}: ${detail}` },
  ]);
}

/** ValidateTokenRequest: the error messages of upstream's static validation, none when it is valid. */
export function validateTokenRequest(tr: TokenRequest): { field: string; type: string; message: string; cause: string }[] {
  const out: { field: string; type: string; message: string; cause: string }[] = [];
  const exp = tr.spec.expirationSeconds ?? 0;
  if (exp < MIN_TOKEN_EXPIRATION_SECONDS) {
    const cause = `Invalid value: ${exp}: may not specify a duration less than 10 minutes`;
    out.push({ field: "spec.expirationSeconds", type: "FieldValueInvalid", message: `spec.expirationSeconds: ${cause}`, cause });
  }
  if (exp > MAX_TOKEN_EXPIRATION_SECONDS) {
    const cause = `Too long: may not be more than ${MAX_TOKEN_EXPIRATION_SECONDS} bytes`;
    out.push({ field: "spec.expirationSeconds", type: "FieldValueTooLong", message: `spec.expirationSeconds: ${cause}`, cause });
  }
  return out;
}

/** schema.GroupVersionKind.String() of an apiVersion and kind: "/v1, Kind=ConfigMap". */
function gvkString(apiVersion: string, kind: string): string {
  const i = apiVersion.indexOf("/");
  const [group, version] = i < 0 ? ["", apiVersion] : [apiVersion.slice(0, i), apiVersion.slice(i + 1)];
  return `${group}/${version}, Kind=${kind}`;
}

async function getOrUndefined(registry: Registry, resource: string, namespace: string, name: string): Promise<KubeObject | undefined> {
  const store = registry.store("", resource);
  const cached = store.cache.get(store.key(namespace, name));
  if (cached) return cached.obj;
  try {
    return await store.get(namespace, name);
  } catch (e) {
    if ((e as { code?: number }).code === 404) return undefined;
    throw e;
  }
}

/** How long an extended token lives: a year, or --service-account-max-token-expiration when that is longer. */
export function maxExtendedExpirationSeconds(maxExpirationSeconds: number): number {
  return Math.max(maxExpirationSeconds, EXPIRATION_EXTENSION_SECONDS);
}

/** The serviceaccounts/token handler for registry.registerSubresourceCreate("", "serviceaccounts", "token", ...). */
export function tokenRequestHandler(registry: Registry, opts: TokenRequestOptions): SubresourceCreate {
  const now = opts.now ?? (() => new Date());
  const apiAudiences = new Set(opts.apiAudiences);
  return async (name, body, req) => {
    const namespace = req.namespace;
    if (!namespace) throw errors.badRequest("namespace is required");
    const tr = structuredClone(body) as TokenRequest;
    tr.metadata ??= {};
    tr.spec ??= { audiences: [] };
    // The name and namespace in the body, when given, must be the URL's.
    if (tr.metadata.name && tr.metadata.name !== name) throw invalid(name, "metadata.name", tr.metadata.name, "must match the service account name if specified");
    if (tr.metadata.namespace && tr.metadata.namespace !== namespace) throw invalid(name, "metadata.namespace", tr.metadata.namespace, "must match the service account namespace if specified");
    if (tr.spec.expirationSeconds === undefined || tr.spec.expirationSeconds === null) tr.spec.expirationSeconds = DEFAULT_TOKEN_EXPIRATION_SECONDS;
    if (!Number.isInteger(tr.spec.expirationSeconds)) throw errors.badRequest(`spec.expirationSeconds must be an integer, got ${JSON.stringify(tr.spec.expirationSeconds)}`);
    if (tr.spec.audiences !== undefined && (!Array.isArray(tr.spec.audiences) || tr.spec.audiences.some((a) => typeof a !== "string"))) {
      throw errors.badRequest("spec.audiences must be a list of strings");
    }

    const sa = (await registry.store("", "serviceaccounts").get(namespace, name)) as ServiceAccount;

    if (!tr.spec.audiences?.length) tr.spec.audiences = [...opts.apiAudiences];
    tr.metadata.name ||= sa.metadata.name;
    tr.metadata.namespace ||= sa.metadata.namespace;
    // Taken before the token is built, so that status.expirationTimestamp is never after its exp.
    const nowTime = now();
    tr.metadata.creationTimestamp = rfc3339(nowTime);
    delete tr.status;

    const errs = validateTokenRequest(tr);
    if (errs.length) throw errors.invalid(GROUP_KIND.group, GROUP_KIND.kind, "", errs);
    // Validating admission (createValidation): NodeRestriction's admitServiceAccount.
    await checkNodeTokenRequest(req.user, namespace, name, tr, (ns, n) => getOrUndefined(registry, "pods", ns, n));

    let pod: Pod | undefined;
    let node: BoundObject | undefined;
    let secret: BoundObject | undefined;
    const ref = tr.spec.boundObjectRef;
    if (ref) {
      const apiVersion = ref.apiVersion ?? "";
      const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
      const refName = ref.name ?? "";
      let uid: string | undefined;
      if (group === "" && ref.kind === "Pod") {
        pod = (await registry.store("", "pods").get(namespace, refName)) as Pod;
        if (name !== pod.spec?.serviceAccountName) throw errors.badRequest(`cannot bind token for serviceaccount "${name}" to pod running with different serviceaccount name.`);
        uid = pod.metadata.uid;
        // The node the pod runs on goes into the token too (ServiceAccountTokenPodNodeInfo); a node
        // that cannot be read does not fail the request.
        const nodeName = pod.spec?.nodeName;
        if (nodeName) node = await getOrUndefined(registry, "nodes", "", nodeName);
      } else if (group === "" && ref.kind === "Node") {
        node = await registry.store("", "nodes").get("", refName);
        uid = node.metadata.uid;
      } else if (group === "" && ref.kind === "Secret") {
        secret = await registry.store("", "secrets").get(namespace, refName);
        uid = secret.metadata.uid;
      } else {
        throw errors.badRequest(`cannot bind token for serviceaccount "${name}" to object of type ${gvkString(apiVersion, ref.kind ?? "")}.`);
      }
      if (ref.uid && uid !== ref.uid) {
        throw errors.conflict(
          { group, resource: ref.kind ?? "" },
          refName,
          `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`,
        );
      }
    }

    // Upstream also warns "requested expiration of N seconds shortened to M seconds"; our
    // subresource handlers have no warning channel yet.
    if (opts.maxExpirationSeconds > 0 && tr.spec.expirationSeconds > opts.maxExpirationSeconds) tr.spec.expirationSeconds = opts.maxExpirationSeconds;

    let warnAfter = 0;
    let exp = tr.spec.expirationSeconds;
    if (opts.extendExpiration && pod && exp === WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS && tr.spec.audiences.every((a) => apiAudiences.has(a))) {
      warnAfter = exp;
      exp = maxExtendedExpirationSeconds(opts.maxExpirationSeconds);
    }

    const c = serviceAccountClaims(sa, { pod, secret, node }, exp, warnAfter, tr.spec.audiences, nowTime);
    const token = opts.generator.generateToken(c.claims, c.private);
    return {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      metadata: tr.metadata,
      spec: tr.spec,
      status: { token, expirationTimestamp: rfc3339(new Date(nowTime.getTime() + tr.spec.expirationSeconds * 1000)) },
    } satisfies TokenRequest;
  };
}
