// The root CA certificate publisher (upstream pkg/controller/certificates/rootcacertpublisher):
// every namespace has a ConfigMap kube-root-ca.crt whose ca.crt is the cluster CA (--root-ca-file),
// which the ServiceAccount admission plugin's projected volume puts beside each pod's token. A
// changed or deleted copy is put back.

import type { ConfigMap, KubeObject } from "../../api/index.ts";
import { isNotFound } from "../../client/errors.ts";
import { newRateLimitingQueue, runController } from "../../client/index.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, Result } from "../../client/types.ts";
import type { ControllerSetup } from "../env.ts";
import { isNamespaceTerminating } from "./serviceaccounts.ts";
import { readFileSync } from "node:fs";

export const ROOT_CA_CERT_CONFIGMAP_NAME = "kube-root-ca.crt";
export const DESCRIPTION_ANNOTATION = "kubernetes.io/description";
export const DESCRIPTION =
  "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. " +
  "No other usage is guaranteed across distributions of Kubernetes clusters.";

export interface PublisherDeps {
  client: Client;
  namespaces: Lister<KubeObject>;
  configMaps: Lister<ConfigMap>;
  /** The PEM bundle to publish. */
  rootCA: string;
}

function sameData(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b).length && ka.every((k) => a![k] === b[k]);
}

/** Keyed by namespace name. */
export class RootCACertPublisher implements Reconciler {
  constructor(private readonly deps: PublisherDeps) {}

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result | void> {
    const ns = this.deps.namespaces.get(key);
    if (!ns) return;
    if ((ns.status as { phase?: string } | undefined)?.phase === "Terminating") return;
    const data = { "ca.crt": this.deps.rootCA };
    const cms = this.deps.client.resource<ConfigMap>("", "configmaps");
    const cm = this.deps.configMaps.get(`${key}/${ROOT_CA_CERT_CONFIGMAP_NAME}`);
    if (!cm) {
      try {
        await cms.create(key, {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: ROOT_CA_CERT_CONFIGMAP_NAME, namespace: key, annotations: { [DESCRIPTION_ANNOTATION]: DESCRIPTION } },
          data,
        });
        ctx.log.info({ namespace: key }, "published root CA certificate");
      } catch (e) {
        // Don't retry a create in a namespace that is gone or terminating. One that exists after
        // all (the cache lagged) is checked again when the informer delivers it.
        if (isNotFound(e) || isNamespaceTerminating(e) || (e as { code?: number }).code === 409) return;
        throw e;
      }
      return;
    }
    // The data, and the one annotation that describes the ConfigMap's use.
    if (sameData(cm.data, data) && cm.metadata.annotations?.[DESCRIPTION_ANNOTATION]) return;
    // Copy: NEVER modify objects from the store.
    const next = structuredClone(cm) as ConfigMap;
    next.data = data;
    next.metadata.annotations = { ...next.metadata.annotations, [DESCRIPTION_ANNOTATION]: DESCRIPTION };
    await cms.update(next);
  }
}

/** `root-ca-cert-publisher` in the controller-manager; it publishes --root-ca-file, and does nothing without it. */
export const setupRootCACertPublisher: ControllerSetup = (env) => {
  const file = env.config.rootCAFile;
  if (!file) return { name: "root-ca-cert-publisher", run: async () => {} };
  const rootCA = readFileSync(file, "utf8");
  const namespaces = env.informers.informer<KubeObject>("", "namespaces");
  const configMaps = env.informers.informer<ConfigMap>("", "configmaps");
  const queue = newRateLimitingQueue<ObjectKey>({ name: "root_ca_cert_publisher", registry: env.registry });
  const ours = (cm: Readonly<ConfigMap>) => cm.metadata.name === ROOT_CA_CERT_CONFIGMAP_NAME;
  configMaps.addEventHandler({
    onDelete: (cm) => ours(cm) && queue.add(cm.metadata.namespace ?? ""),
    onUpdate: (_, cm) => ours(cm) && queue.add(cm.metadata.namespace ?? ""),
  });
  namespaces.addEventHandler({ onAdd: (ns) => queue.add(ns.metadata.name ?? ""), onUpdate: (_, ns) => queue.add(ns.metadata.name ?? "") });
  const reconciler = new RootCACertPublisher({ client: env.client, namespaces: namespaces.lister, configMaps: configMaps.lister, rootCA });
  return {
    name: "root-ca-cert-publisher",
    run: (ctx) => runController(ctx, { name: "root_ca_cert_publisher", reconciler, queue, workers: env.workers, informers: [namespaces, configMaps] }),
  };
};
