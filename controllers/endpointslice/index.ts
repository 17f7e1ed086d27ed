// The EndpointSlice controller: for every Service with a selector, discovery.k8s.io/v1 slices of at
// most 100 endpoints, one group of slices per distinct port set, owned by the service
// (pkg/controller/endpointslice's reconciler). Endpoints stay in the slice they are in; only the
// slices whose content changed are written; surplus slices are deleted.

import {
  LabelManagedBy,
  LabelServiceName,
  selectorFromSet,
  type Endpoint,
  type EndpointSlice,
  type EndpointSlicePort,
  type Node,
  type Pod,
  type Service,
} from "../../api/index.ts";
import { isNotFound } from "../../client/errors.ts";
import type { Client, Lister, ObjectKey, ReconcileContext, Reconciler, ResourceClient, Result } from "../../client/types.ts";
import { LabelHeadlessService } from "../endpoints/index.ts";
import { canonical, findPort, hostnameFor, isPodReady, podIPv4, selectedPods, serviceSelector, shouldPodBeInEndpoints } from "../endpoints/util.ts";
import { Expectations } from "../expectations.ts";
import { deepCopy, keyOf } from "../podcontrol.ts";

export const ControllerName = "endpointslice-controller.k8s.io";
export const MaxEndpointsPerSlice = 100;
export const LabelTopologyZone = "topology.kubernetes.io/zone";

export interface EndpointSliceControllerDeps {
  client: Client;
  services: Lister<Service>;
  pods: Lister<Pod>;
  nodes: Lister<Node>;
  endpointSlices: Lister<EndpointSlice>;
  /** Slice creations and deletions not yet seen by the informer, per service key. */
  expectations: SliceExpectations;
  maxEndpointsPerSlice?: number;
}

/**
 * Creations and deletions of a service's slices not yet seen by the informer. Two Expectations,
 * because one reconcile may both create and delete slices and an Expectations record holds one
 * kind of pending write at a time.
 */
export class SliceExpectations {
  private readonly creations: Expectations;
  private readonly deletions: Expectations;

  constructor(opts: ConstructorParameters<typeof Expectations>[0] = {}) {
    this.creations = new Expectations(opts);
    this.deletions = new Expectations(opts);
  }

  expect(key: ObjectKey, creations: number, deletedUIDs: readonly string[]): void {
    this.creations.expectCreations(key, creations);
    this.deletions.expectDeletions(key, deletedUIDs);
  }

  creationObserved(key: ObjectKey): void {
    this.creations.creationObserved(key);
  }

  deletionObserved(key: ObjectKey, uid: string): void {
    this.deletions.deletionObserved(key, uid);
  }

  satisfied(key: ObjectKey): boolean {
    return this.creations.satisfied(key) && this.deletions.satisfied(key);
  }

  delete(key: ObjectKey): void {
    this.creations.delete(key);
    this.deletions.delete(key);
  }
}

/** The slices of one port set: what they should hold. */
interface PortGroup {
  ports: EndpointSlicePort[];
  endpoints: Map<string, Endpoint>;
}

export class EndpointSliceController implements Reconciler {
  private readonly sliceClient: ResourceClient<EndpointSlice>;
  private readonly max: number;

  constructor(private readonly deps: EndpointSliceControllerDeps) {
    this.sliceClient = deps.client.resource<EndpointSlice>("discovery.k8s.io", "endpointslices");
    this.max = deps.maxEndpointsPerSlice ?? MaxEndpointsPerSlice;
  }

  /** Key: the service's "namespace/name". */
  async reconcile(ctx: ReconcileContext, key: ObjectKey): Promise<Result> {
    const svc = this.deps.services.get(key);
    if (!svc) {
      // Its slices carry an ownerReference to it: the garbage collector deletes them.
      this.deps.expectations.delete(key);
      return {};
    }
    if (!serviceSelector(svc)) return {};
    // A slice we created or deleted is not in the cache yet: acting now could duplicate it.
    if (!this.deps.expectations.satisfied(key)) return {};

    const ns = svc.metadata.namespace ?? "";
    const existing = this.deps.endpointSlices.listNamespace(ns, selectorFromSet({ [LabelServiceName]: svc.metadata.name ?? "", [LabelManagedBy]: ControllerName }));
    const owned = existing.filter((s) => s.metadata.ownerReferences?.some((r) => r.uid === svc.metadata.uid));
    // Slices of an older service of the same name are surplus.
    const toDelete: Readonly<EndpointSlice>[] = existing.filter((s) => !owned.includes(s));
    const toCreate: EndpointSlice[] = [];
    const toUpdate: EndpointSlice[] = [];

    const groups = this.desiredGroups(svc);
    const labels = sliceLabels(svc);
    const unclaimed = new Set(owned);
    for (const [gk, group] of groups) {
      const slices = owned.filter((s) => portsKey(s.ports ?? []) === gk).sort((a, b) => cmp(a.metadata.name ?? "", b.metadata.name ?? ""));
      slices.forEach((s) => unclaimed.delete(s));
      const remaining = new Map(group.endpoints);
      // First keep every endpoint in the slice it already lives in (fewer writes, stable slices)...
      const contents = slices.map((s) => {
        const kept: Endpoint[] = [];
        for (const e of s.endpoints ?? []) {
          const k = endpointKey(e);
          const want = remaining.get(k);
          if (want && kept.length < this.max) {
            kept.push(want);
            remaining.delete(k);
          }
        }
        return kept;
      });
      // ...then fill the free room of existing slices, then new slices.
      const rest = [...remaining.values()].sort(byEndpoint);
      for (const kept of contents) while (kept.length < this.max && rest.length > 0) kept.push(rest.shift()!);
      slices.forEach((s, i) => {
        const eps = contents[i]!.sort(byEndpoint);
        // An empty group keeps exactly one (placeholder) slice; otherwise empty slices go.
        if (eps.length === 0 && !(group.endpoints.size === 0 && i === 0)) {
          toDelete.push(s);
          return;
        }
        if (canonical(s.endpoints ?? []) === canonical(eps) && canonical(s.metadata.labels ?? {}) === canonical(labels)) return;
        const next = deepCopy(s);
        next.metadata.labels = labels;
        next.endpoints = eps;
        next.ports = group.ports;
        toUpdate.push(next);
      });
      for (let i = 0; i < rest.length || (slices.length === 0 && i === 0); i += this.max) {
        toCreate.push(this.newSlice(svc, labels, group.ports, rest.slice(i, i + this.max)));
      }
    }
    toDelete.push(...unclaimed);

    if (toCreate.length + toUpdate.length + toDelete.length === 0) return {};
    ctx.log.debug({ service: key, create: toCreate.length, update: toUpdate.length, delete: toDelete.length }, "reconciling endpoint slices");
    const { expectations } = this.deps;
    // Expect before writing: the informer may deliver an event before the call returns.
    expectations.expect(key, toCreate.length, toDelete.map((s) => s.metadata.uid ?? ""));
    const results = await Promise.allSettled([
      ...toCreate.map(async (s) => {
        try {
          await this.sliceClient.create(ns, s);
        } catch (e) {
          expectations.creationObserved(key); // never to be observed
          throw e;
        }
      }),
      // resourceVersion from the cache: a stale cache is a 409, retried once the informer caught up.
      ...toUpdate.map((s) => this.sliceClient.update(s)),
      ...toDelete.map(async (s) => {
        try {
          await this.sliceClient.delete(ns, s.metadata.name ?? "", { preconditions: { uid: s.metadata.uid } });
        } catch (e) {
          expectations.deletionObserved(key, s.metadata.uid ?? "");
          if (!isNotFound(e)) throw e;
        }
      }),
    ]);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return {};
  }

  /** The endpoints the service should have, grouped by the ports their pods serve. */
  private desiredGroups(svc: Readonly<Service>): Map<string, PortGroup> {
    const groups = new Map<string, PortGroup>();
    for (const pod of selectedPods(svc, this.deps.pods)) {
      // Terminating pods stay, marked terminating (and serving while still ready).
      if (!shouldPodBeInEndpoints(pod, true)) continue;
      const ports = endpointPorts(svc, pod);
      const gk = portsKey(ports);
      let g = groups.get(gk);
      if (!g) groups.set(gk, (g = { ports, endpoints: new Map() }));
      const ep = this.podToEndpoint(svc, pod);
      g.endpoints.set(endpointKey(ep), ep);
    }
    // No endpoints at all: one empty slice says "this service has none" (upstream's placeholder).
    if (groups.size === 0) groups.set(portsKey([]), { ports: [], endpoints: new Map() });
    return groups;
  }

  private podToEndpoint(svc: Readonly<Service>, pod: Readonly<Pod>): Endpoint {
    const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
    const serving = isPodReady(pod);
    const terminating = !!pod.metadata.deletionTimestamp;
    // "ready" is never true for a terminating pod, unless the service publishes not-ready addresses.
    const ready = publishNotReady || (serving && !terminating);
    const ep: Endpoint = {
      addresses: [podIPv4(pod)!],
      conditions: { ready, serving, terminating },
      targetRef: { kind: "Pod", namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid },
    };
    const nodeName = pod.spec?.nodeName;
    if (nodeName) {
      ep.nodeName = nodeName;
      const zone = this.deps.nodes.get(nodeName)?.metadata.labels?.[LabelTopologyZone];
      if (zone) ep.zone = zone;
    }
    const hostname = hostnameFor(pod, svc);
    if (hostname) ep.hostname = hostname;
    return ep;
  }

  private newSlice(svc: Readonly<Service>, labels: Record<string, string>, ports: EndpointSlicePort[], endpoints: Endpoint[]): EndpointSlice {
    return {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        generateName: `${svc.metadata.name}-`,
        namespace: svc.metadata.namespace,
        labels,
        ownerReferences: [{ apiVersion: "v1", kind: "Service", name: svc.metadata.name ?? "", uid: svc.metadata.uid ?? "", controller: true, blockOwnerDeletion: true }],
      },
      addressType: "IPv4",
      endpoints,
      ports,
    };
  }
}

/** The service's labels, plus the slice's service-name and managed-by (and headless) labels. */
function sliceLabels(svc: Readonly<Service>): Record<string, string> {
  const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}) };
  delete labels[LabelHeadlessService];
  if (svc.spec?.clusterIP === "None") labels[LabelHeadlessService] = "";
  labels[LabelServiceName] = svc.metadata.name ?? "";
  labels[LabelManagedBy] = ControllerName;
  return labels;
}

/** getEndpointPorts: the service's ports as this pod serves them (a named port it lacks is left out). */
export function endpointPorts(svc: Readonly<Service>, pod: Readonly<Pod>): EndpointSlicePort[] {
  const out: EndpointSlicePort[] = [];
  for (const sp of svc.spec?.ports ?? []) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    const p: EndpointSlicePort = { name: sp.name ?? "", port, protocol: sp.protocol ?? "TCP" };
    if (sp.appProtocol) p.appProtocol = sp.appProtocol;
    out.push(p);
  }
  return out.sort((a, b) => cmp(`${a.name}/${a.protocol}/${a.port}`, `${b.name}/${b.protocol}/${b.port}`));
}

function portsKey(ports: readonly Readonly<EndpointSlicePort>[]): string {
  return ports
    .map((p) => `${p.name ?? ""}/${p.protocol ?? "TCP"}/${p.port ?? ""}/${p.appProtocol ?? ""}`)
    .sort()
    .join(",");
}

function endpointKey(e: Readonly<Endpoint>): string {
  return e.targetRef?.uid ? `uid:${e.targetRef.uid}` : `ip:${e.addresses[0] ?? ""}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byEndpoint(a: Readonly<Endpoint>, b: Readonly<Endpoint>): number {
  return cmp(a.addresses[0] ?? "", b.addresses[0] ?? "") || cmp(endpointKey(a), endpointKey(b));
}

/** The key of the service a managed slice belongs to, or undefined for slices of other managers. */
export function serviceKeyOfSlice(slice: Readonly<EndpointSlice>): ObjectKey | undefined {
  const labels = slice.metadata.labels ?? {};
  const svc = labels[LabelServiceName];
  if (!svc || labels[LabelManagedBy] !== ControllerName) return undefined;
  return `${slice.metadata.namespace ?? ""}/${svc}`;
}

/** Maps node events to the services with pods on the node, when the node's zone changed. */
export function nodeZoneChangedKeys(
  oldNode: Readonly<Node> | undefined,
  cur: Readonly<Node>,
  pods: Lister<Pod>,
  services: Lister<Service>,
  podNodeIndex: string,
): ObjectKey[] {
  if (oldNode && oldNode.metadata.labels?.[LabelTopologyZone] === cur.metadata.labels?.[LabelTopologyZone]) return [];
  const keys = new Set<ObjectKey>();
  for (const pod of pods.byIndex(podNodeIndex, cur.metadata.name ?? "")) {
    for (const s of services.listNamespace(pod.metadata.namespace ?? "")) if (serviceSelector(s)?.matches(pod.metadata.labels)) keys.add(keyOf(s));
  }
  return [...keys];
}
