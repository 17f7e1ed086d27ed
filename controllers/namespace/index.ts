// The namespace controller: empties a terminating namespace of every namespaced object, reports what
// remains in status conditions, then removes its "kubernetes" finalizer so the apiserver deletes it.

import { RESOURCES, type KubeObject, type Namespace, type NamespaceCondition, type NamespaceStatus, type ResourceInfo } from "../../api/index.ts";
import { isNotFound } from "../../client/errors.ts";
import { RestClient, resourcePath } from "../../client/rest.ts";
import type { Client, Clock, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { deepCopy, errorMessage, rfc3339 } from "../podcontrol.ts";

/** The finalizer in spec.finalizers this controller owns. */
export const FinalizerKubernetes = "kubernetes";
/** How soon to look again while content remains (pods in graceful termination, finalizers pending). */
export const ContentRemainingRequeueMs = 2000;

/**
 * Replaces spec.finalizers through PUT namespaces/<name>/finalize, the only way they change.
 * `resourceVersion`, when given, is a precondition (409 when the namespace moved on).
 */
export type NamespaceFinalizer = (name: string, finalizers: string[], resourceVersion?: string) => Promise<void>;

export interface NamespaceControllerDeps {
  client: Client;
  namespaces: Lister<Namespace>;
  finalize: NamespaceFinalizer;
  clock?: Pick<Clock, "now">;
  /** The namespaced resources to empty; default every deletable namespaced resource the API serves. */
  resources?: readonly ResourceInfo[];
}

/**
 * The finalize call for a client: a PUT of the finalize subresource for the REST client; for any
 * other client (the FakeClient in tests) a merge patch addressed to the finalize subresource.
 */
export function namespaceFinalizer(client: Client): NamespaceFinalizer {
  const info = RESOURCES.find((r) => r.group === "" && r.resource === "namespaces")!;
  if (client instanceof RestClient) {
    return async (name, finalizers, resourceVersion) => {
      const body: Namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name, ...(resourceVersion ? { resourceVersion } : {}) }, spec: { finalizers } };
      await client.requestJSON({ method: "PUT", path: resourcePath(info, "", name, "finalize"), body: JSON.stringify(body) });
    };
  }
  const namespaces = client.resource<Namespace>("", "namespaces");
  return async (name, finalizers, resourceVersion) => {
    const patch = { metadata: resourceVersion ? { resourceVersion } : {}, spec: { finalizers } };
    await namespaces.patch("", name, "merge", patch, { subresource: "finalize" });
  };
}

/** What deleting one resource's objects left behind. */
interface ContentReport {
  remaining: Map<string, number>;
  finalizers: Map<string, number>;
  errors: string[];
}

export class NamespaceController implements Reconciler {
  private readonly nsClient: ResourceClient<Namespace>;
  private readonly clock: Pick<Clock, "now">;
  private readonly resources: readonly ResourceInfo[];

  constructor(private readonly deps: NamespaceControllerDeps) {
    this.nsClient = deps.client.resource<Namespace>("", "namespaces");
    this.clock = deps.clock ?? { now: () => Date.now() };
    this.resources = deps.resources ?? RESOURCES.filter((r) => r.namespaced && r.verbs.includes("delete") && r.verbs.includes("list"));
  }

  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const ns = this.deps.namespaces.get(key);
    if (!ns || !ns.metadata.deletionTimestamp) return {};
    const finalizers = ns.spec?.finalizers ?? [];
    if (!finalizers.includes(FinalizerKubernetes)) return {};
    const name = ns.metadata.name ?? "";

    const report = await this.deleteAllContent(ctx, name);
    const remaining = [...report.remaining.values()].reduce((a, b) => a + b, 0);
    await this.updateConditions(ns, report);

    if (report.errors.length > 0) throw new Error(`namespace ${name}: ${report.errors.join("; ")}`);
    if (remaining > 0) {
      ctx.log.debug({ namespace: name, remaining }, "content remains; waiting");
      return { requeueAfterMs: ContentRemainingRequeueMs };
    }
    try {
      await this.deps.finalize(name, finalizers.filter((f) => f !== FinalizerKubernetes), ns.metadata.resourceVersion);
    } catch (e) {
      if (isNotFound(e)) return {};
      throw e;
    }
    ctx.log.info({ namespace: name }, "namespace emptied and finalized");
    return {};
  }

  /**
   * For every namespaced resource: list, delete what is not already being deleted (Background, so
   * dependents go too), list again to see what remains and which finalizers hold it.
   */
  private async deleteAllContent(ctx: ReconcileContext, namespace: string): Promise<ContentReport> {
    const report: ContentReport = { remaining: new Map(), finalizers: new Map(), errors: [] };
    await Promise.all(
      this.resources.map(async (info) => {
        const gr = info.group ? `${info.resource}.${info.group}` : info.resource;
        const rc = this.deps.client.resource<KubeObject>(info.group, info.resource);
        try {
          const items = (await rc.list(namespace)).items;
          if (items.length === 0) return;
          const live = items.filter((o) => !o.metadata.deletionTimestamp);
          await Promise.all(
            live.map(async (o) => {
              try {
                await rc.delete(namespace, o.metadata.name ?? "", { propagationPolicy: "Background" });
              } catch (e) {
                if (!isNotFound(e)) throw e;
              }
            }),
          );
          const left = live.length > 0 ? (await rc.list(namespace)).items : items;
          if (left.length === 0) return;
          report.remaining.set(gr, left.length);
          for (const o of left) for (const f of o.metadata.finalizers ?? []) report.finalizers.set(f, (report.finalizers.get(f) ?? 0) + 1);
        } catch (e) {
          ctx.log.warn({ namespace, resource: gr, err: e }, "deleting namespace content failed");
          report.errors.push(`${gr}: ${errorMessage(e)}`);
          // Unknown: count it as remaining so the namespace is not finalized over it.
          report.remaining.set(gr, report.remaining.get(gr) ?? 1);
        }
      }),
    );
    return report;
  }

  /** The five conditions upstream reports while terminating (True: a problem); written only on change. */
  private async updateConditions(ns: Readonly<Namespace>, report: ContentReport): Promise<void> {
    const now = this.clock.now();
    const list = (m: Map<string, number>, fmt: (k: string, n: number) => string): string =>
      [...m.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => fmt(k, n))
        .join(", ");
    const wanted: Omit<NamespaceCondition, "lastTransitionTime">[] = [
      { type: "NamespaceDeletionDiscoveryFailure", status: "False", reason: "ResourcesDiscovered", message: "All resources successfully discovered" },
      { type: "NamespaceDeletionGroupVersionParsingFailure", status: "False", reason: "ParsedGroupVersions", message: "All legacy kube types successfully parsed" },
      report.errors.length > 0
        ? { type: "NamespaceDeletionContentFailure", status: "True", reason: "ContentDeletionFailed", message: `Failed to delete all resource types, ${report.errors.length} remaining: ${report.errors.join(", ")}` }
        : { type: "NamespaceDeletionContentFailure", status: "False", reason: "ContentDeleted", message: "All content successfully deleted, may be waiting on finalization" },
      report.remaining.size > 0
        ? { type: "NamespaceContentRemaining", status: "True", reason: "SomeResourcesRemain", message: `Some resources are remaining: ${list(report.remaining, (gr, n) => `${gr} has ${n} resource instances`)}` }
        : { type: "NamespaceContentRemaining", status: "False", reason: "ContentRemoved", message: "All content successfully removed" },
      report.finalizers.size > 0
        ? { type: "NamespaceFinalizersRemaining", status: "True", reason: "SomeFinalizersRemain", message: `Some content in the namespace has finalizers remaining: ${list(report.finalizers, (f, n) => `${f} in ${n} resource instances`)}` }
        : { type: "NamespaceFinalizersRemaining", status: "False", reason: "ContentHasNoFinalizers", message: "All content-preserving finalizers finished" },
    ];
    const old = ns.status?.conditions ?? [];
    const conditions: NamespaceCondition[] = wanted.map((c) => {
      const prev = old.find((o) => o.type === c.type);
      return { ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : rfc3339(now) };
    });
    const others = old.filter((o) => !wanted.some((w) => w.type === o.type));
    const status: NamespaceStatus = { ...ns.status, phase: "Terminating", conditions: [...others, ...conditions] };
    if (sameStatus(ns.status, status)) return;
    const obj = deepCopy(ns);
    obj.status = status;
    try {
      await this.nsClient.updateStatus(obj);
    } catch (e) {
      // A stale cache or a namespace already gone: the next round writes the status again.
      if (!isNotFound(e)) throw e;
    }
  }
}

function sameStatus(a: Readonly<NamespaceStatus> | undefined, b: Readonly<NamespaceStatus>): boolean {
  const strip = (s: Readonly<NamespaceStatus> | undefined) => ({
    phase: s?.phase,
    conditions: (s?.conditions ?? []).map(({ type, status, reason, message }) => ({ type, status, reason, message })),
  });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
