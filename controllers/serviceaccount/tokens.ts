// The legacy tokens controller (upstream pkg/controller/serviceaccount/tokens_controller.go): a
// Secret of type kubernetes.io/service-account-token naming a ServiceAccount gets a signed,
// non-expiring token of that account, the CA (ca.crt) and its namespace; it is deleted when its
// ServiceAccount is. Runs only with --service-account-private-key-file.

import { readFileSync } from "node:fs";
import type { Secret, ServiceAccount } from "../../api/index.ts";
import { isConflict, isNotFound } from "../../client/errors.ts";
import { newRateLimitingQueue, runController } from "../../client/index.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import {
  LEGACY_ISSUER,
  SERVICE_ACCOUNT_NAME_KEY,
  SERVICE_ACCOUNT_NAMESPACE_KEY,
  SERVICE_ACCOUNT_ROOT_CA_KEY,
  SERVICE_ACCOUNT_TOKEN_KEY,
  SERVICE_ACCOUNT_TOKEN_SECRET_TYPE,
  SERVICE_ACCOUNT_UID_KEY,
  legacyClaims,
} from "../../apiserver/serviceaccount/claims.ts";
import { TokenGenerator, parsePrivateKeyPEM } from "../../apiserver/serviceaccount/jwt.ts";
import type { ControllerSetup } from "../env.ts";

/** What a queued key names (upstream's serviceAccountQueueKey / secretQueueKey), as JSON. */
interface ServiceAccountKey {
  namespace: string;
  name: string;
  uid: string;
}
interface SecretKey extends ServiceAccountKey {
  saName: string;
  saUID: string;
}

export function serviceAccountKey(sa: Readonly<ServiceAccount>): ObjectKey {
  return JSON.stringify([sa.metadata.namespace ?? "", sa.metadata.name ?? "", sa.metadata.uid ?? ""]);
}

export function secretKey(s: Readonly<Secret>): ObjectKey {
  const a = s.metadata.annotations ?? {};
  return JSON.stringify([s.metadata.namespace ?? "", s.metadata.name ?? "", s.metadata.uid ?? "", a[SERVICE_ACCOUNT_NAME_KEY] ?? "", a[SERVICE_ACCOUNT_UID_KEY] ?? ""]);
}

function parseServiceAccountKey(key: ObjectKey): ServiceAccountKey {
  const [namespace, name, uid] = JSON.parse(key) as string[];
  return { namespace: namespace!, name: name!, uid: uid! };
}

function parseSecretKey(key: ObjectKey): SecretKey {
  const [namespace, name, uid, saName, saUID] = JSON.parse(key) as string[];
  return { namespace: namespace!, name: name!, uid: uid!, saName: saName!, saUID: saUID! };
}

export function isServiceAccountToken(s: Readonly<Secret>): boolean {
  return s.type === SERVICE_ACCOUNT_TOKEN_SECRET_TYPE;
}

/** serviceaccount.IsServiceAccountToken with the account: the secret's annotations name it (and its uid, when set). */
function referencesAccount(s: Readonly<Secret>, sa: ServiceAccountKey): boolean {
  if (!isServiceAccountToken(s)) return false;
  const a = s.metadata.annotations ?? {};
  if (a[SERVICE_ACCOUNT_NAME_KEY] !== sa.name) return false;
  const uid = a[SERVICE_ACCOUNT_UID_KEY];
  return !uid || !sa.uid || uid === sa.uid;
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");
const unb64 = (s: string | undefined): string => (s === undefined ? "" : Buffer.from(s, "base64").toString("utf8"));

export interface TokensDeps {
  client: Client;
  serviceAccounts: Lister<ServiceAccount>;
  secrets: Lister<Secret>;
  /** Signs with serviceaccount.LegacyIssuer. */
  generator: TokenGenerator;
  /** The CA put in ca.crt (--root-ca-file); empty: none. */
  rootCA: string;
}

/**
 * getServiceAccount: the cached account with that name (and uid, when the key has one); on a cache
 * miss, when asked, the live one. undefined when there is none.
 */
async function getServiceAccount(deps: TokensDeps, k: { namespace: string; name: string; uid: string }, fetchOnCacheMiss: boolean): Promise<ServiceAccount | undefined> {
  const matches = (sa: Readonly<ServiceAccount> | undefined) => (sa && (!k.uid || sa.metadata.uid === k.uid) ? (sa as ServiceAccount) : undefined);
  const cached = deps.serviceAccounts.get(`${k.namespace}/${k.name}`);
  if (cached) return matches(cached);
  if (!fetchOnCacheMiss) return undefined;
  try {
    return matches(await deps.client.resource<ServiceAccount>("", "serviceaccounts").get(k.namespace, k.name));
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** syncServiceAccount: a ServiceAccount that is gone takes its token Secrets with it. */
export class ServiceAccountTokensCleanup implements Reconciler {
  constructor(private readonly deps: TokensDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const k = parseServiceAccountKey(key);
    if (await getServiceAccount(this.deps, k, false)) return;
    const secrets = this.deps.client.resource<Secret>("", "secrets");
    for (const s of this.deps.secrets.listNamespace(k.namespace)) {
      if (!referencesAccount(s, k)) continue;
      try {
        await secrets.delete(k.namespace, s.metadata.name ?? "", { preconditions: { uid: s.metadata.uid } });
        ctx.log.info({ secret: `${k.namespace}/${s.metadata.name}`, serviceAccount: `${k.namespace}/${k.name}` }, "deleted token of deleted service account");
      } catch (e) {
        if (isNotFound(e) || isConflict(e)) continue;
        throw e;
      }
    }
  }
}

/** syncSecret: fills a token Secret, or deletes it when its ServiceAccount does not exist. */
export class TokenSecretController implements Reconciler {
  constructor(private readonly deps: TokensDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const k = parseSecretKey(key);
    const cached = this.deps.secrets.get(`${k.namespace}/${k.name}`);
    const secret = cached && (!k.uid || cached.metadata.uid === k.uid) ? cached : undefined;
    if (!secret) {
      // Upstream then drops the secret from the account's `secrets` list; nothing here adds it there.
      return;
    }
    const sa = await getServiceAccount(this.deps, { namespace: k.namespace, name: k.saName, uid: k.saUID }, true);
    if (!sa) {
      try {
        await this.deps.client.resource<Secret>("", "secrets").delete(k.namespace, k.name, { preconditions: { uid: k.uid } });
        ctx.log.info({ secret: `${k.namespace}/${k.name}` }, "service account does not exist, deleted token");
      } catch (e) {
        if (isNotFound(e) || isConflict(e)) return;
        throw e;
      }
      return;
    }
    await this.generateTokenIfNeeded(ctx, sa, secret);
  }

  private async generateTokenIfNeeded(ctx: ReconcileContext, sa: ServiceAccount, cached: Readonly<Secret>): Promise<void> {
    const secrets = this.deps.client.resource<Secret>("", "secrets");
    let live: Secret;
    try {
      live = await secrets.get(cached.metadata.namespace ?? "", cached.metadata.name ?? "");
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    // Our view is stale: the update event will come.
    if (live.metadata.resourceVersion !== cached.metadata.resourceVersion) return;
    const data = live.data ?? {};
    const needsCA = this.deps.rootCA !== "" && unb64(data[SERVICE_ACCOUNT_ROOT_CA_KEY]) !== this.deps.rootCA;
    const needsNamespace = !data[SERVICE_ACCOUNT_NAMESPACE_KEY];
    const needsToken = !data[SERVICE_ACCOUNT_TOKEN_KEY];
    if (!needsCA && !needsNamespace && !needsToken) return;
    live.data = data;
    if (needsCA) data[SERVICE_ACCOUNT_ROOT_CA_KEY] = b64(this.deps.rootCA);
    if (needsNamespace) data[SERVICE_ACCOUNT_NAMESPACE_KEY] = b64(live.metadata.namespace ?? "");
    if (needsToken) {
      const c = legacyClaims(sa, live);
      data[SERVICE_ACCOUNT_TOKEN_KEY] = b64(this.deps.generator.generateToken(c.claims, { ...c.private }));
    }
    live.metadata.annotations = { ...live.metadata.annotations, [SERVICE_ACCOUNT_NAME_KEY]: sa.metadata.name ?? "", [SERVICE_ACCOUNT_UID_KEY]: sa.metadata.uid ?? "" };
    try {
      await secrets.update(live);
      ctx.log.info({ secret: `${live.metadata.namespace}/${live.metadata.name}`, serviceAccount: sa.metadata.name }, "populated service account token");
    } catch (e) {
      // Updated by someone else (an event follows) or gone (nothing to populate).
      if (isConflict(e) || isNotFound(e)) return;
      throw e;
    }
  }
}

/** `serviceaccount-token` in the controller-manager: only with --service-account-private-key-file, as upstream. */
export const setupTokensController: ControllerSetup = (env) => {
  const keyFile = env.config.serviceAccountPrivateKeyFile;
  if (!keyFile) return { name: "serviceaccount-token", run: async () => {} };
  const generator = new TokenGenerator(LEGACY_ISSUER, parsePrivateKeyPEM(readFileSync(keyFile, "utf8")));
  const rootCA = env.config.rootCAFile ? readFileSync(env.config.rootCAFile, "utf8") : "";
  const serviceAccounts = env.informers.informer<ServiceAccount>("", "serviceaccounts");
  const secrets = env.informers.informer<Secret>("", "secrets");
  const saQueue = newRateLimitingQueue<ObjectKey>({ name: "serviceaccount_tokens_service", registry: env.registry });
  const secretQueue = newRateLimitingQueue<ObjectKey>({ name: "serviceaccount_tokens_secret", registry: env.registry });
  serviceAccounts.addEventHandler({ onDelete: (sa) => saQueue.add(serviceAccountKey(sa)) });
  const onSecret = (s: Readonly<Secret>) => isServiceAccountToken(s) && secretQueue.add(secretKey(s));
  secrets.addEventHandler({ onAdd: onSecret, onUpdate: (_, s) => onSecret(s), onDelete: onSecret });
  const deps: TokensDeps = { client: env.client, serviceAccounts: serviceAccounts.lister, secrets: secrets.lister, generator, rootCA };
  const informers = [serviceAccounts, secrets];
  return {
    name: "serviceaccount-token",
    run: async (ctx) => {
      await Promise.all([
        runController(ctx, { name: "serviceaccount_tokens_service", reconciler: new ServiceAccountTokensCleanup(deps), queue: saQueue, workers: env.workers, informers }),
        runController(ctx, { name: "serviceaccount_tokens_secret", reconciler: new TokenSecretController(deps), queue: secretQueue, workers: env.workers, informers }),
      ]);
    },
  };
};
