// The ServiceAccounts controller (upstream pkg/controller/serviceaccount/serviceaccounts_controller.go):
// every active namespace has a ServiceAccount "default", created when the namespace appears and
// again whenever it is deleted, so that pods (which run as "default" unless they say otherwise)
// can be admitted there.

import type { KubeObject, ServiceAccount } from "../../api/index.ts";
import { isAlreadyExists, isNotFound } from "../../client/errors.ts";
import { newRateLimitingQueue, runController } from "../../client/index.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import type { ControllerSetup } from "../env.ts";

/** DefaultServiceAccountsControllerOptions: the accounts every namespace gets. */
export const SERVICE_ACCOUNTS_TO_ENSURE = ["default"];

export interface ServiceAccountsDeps {
  client: Client;
  namespaces: Lister<KubeObject>;
  serviceAccounts: Lister<ServiceAccount>;
  /** Default SERVICE_ACCOUNTS_TO_ENSURE. */
  ensure?: readonly string[];
}

/** The apiserver's refusal to create in a terminating namespace (NamespaceTerminatingCause). */
export function isNamespaceTerminating(e: unknown): boolean {
  const err = e as { code?: number; message?: string; status?: { details?: { causes?: { reason?: string }[] } } };
  return err?.code === 403 && (err.status?.details?.causes?.some((c) => c.reason === "NamespaceTerminating") === true || /because it is being terminated/.test(err.message ?? ""));
}

/** Keyed by namespace name. */
export class ServiceAccountsController implements Reconciler {
  constructor(private readonly deps: ServiceAccountsDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const ns = this.deps.namespaces.get(key);
    if (!ns) return;
    // A namespace that is not active gets nothing new.
    const phase = (ns.status as { phase?: string } | undefined)?.phase;
    if ((phase && phase !== "Active") || ns.metadata.deletionTimestamp) return;
    for (const name of this.deps.ensure ?? SERVICE_ACCOUNTS_TO_ENSURE) {
      // NEVER modify objects from the store: the lister only says whether it is there.
      if (this.deps.serviceAccounts.get(`${key}/${name}`)) continue;
      try {
        await this.deps.client.resource<ServiceAccount>("", "serviceaccounts").create(key, { apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: key } });
        ctx.log.info({ namespace: key, serviceAccount: name }, "created service account");
      } catch (e) {
        if (isAlreadyExists(e)) continue;
        // Gone or terminating: nothing to ensure there any more.
        if (isNotFound(e) || isNamespaceTerminating(e)) return;
        throw e;
      }
    }
  }
}

/** `serviceaccount` in the controller-manager (upstream's service-account-controller role). */
export const setupServiceAccountsController: ControllerSetup = (env) => {
  const namespaces = env.informers.informer<KubeObject>("", "namespaces");
  const serviceAccounts = env.informers.informer<ServiceAccount>("", "serviceaccounts");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "serviceaccount", registry: env.registry });
  // A deleted account is recreated; a new or changed namespace is checked.
  serviceAccounts.addEventHandler({ onDelete: (sa) => queue.add(sa.metadata.namespace ?? "") });
  namespaces.addEventHandler({ onAdd: (ns) => queue.add(ns.metadata.name ?? ""), onUpdate: (_, ns) => queue.add(ns.metadata.name ?? "") });
  const reconciler = new ServiceAccountsController({ client: env.client, namespaces: namespaces.lister, serviceAccounts: serviceAccounts.lister });
  return {
    name: "serviceaccount",
    run: (ctx) => runController(ctx, { name: "serviceaccount", reconciler, queue, workers: env.workers, informers: [namespaces, serviceAccounts] }),
  };
};
