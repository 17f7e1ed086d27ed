// The kube-dns Service and this server's EndpointSlice, kept as a cluster add-on manager keeps them:
// the Service kube-system/kube-dns (no selector, the configured ClusterIP, ports dns 53/UDP and
// dns-tcp 53/TCP pointing at our port) and one slice kube-system/kube-dns-<name> with our address,
// labelled managed-by dns.kubelab.io so that the endpointslice controller leaves it alone (it lists
// only slices labelled with its own name). Level-based: sync() compares what is there with what should
// be and writes the difference; a Service someone created with another ClusterIP is reported, never
// replaced (the ClusterIP is immutable and the name may be serving clients).

import type { EndpointSlice, Service, ServicePort } from "../../api/index.ts";
import { LabelManagedBy, LabelServiceName } from "../../api/index.ts";
import { isAlreadyExists, isConflict, isNotFound, realClock, type Client, type Clock, type Context, type Lister } from "../../client/index.ts";

export const KUBE_DNS_NAMESPACE = "kube-system";
export const KUBE_DNS_SERVICE = "kube-dns";
/** The managed-by value of our slice (upstream's convention: a domain naming the manager). */
export const DNS_SLICE_MANAGER = "dns.kubelab.io";

export interface KubeDNSOptions {
  client: Client;
  services: Lister<Service>;
  endpointSlices: Lister<EndpointSlice>;
  /** The kube-dns ClusterIP. */
  serviceIP: string;
  /** Where this server answers: the slice's endpoint. */
  address: string;
  port: number;
  /** The slice is kube-dns-<name>. */
  name: string;
  /** topology.kubernetes.io/zone of the endpoint. */
  zone?: string;
  clock?: Clock;
}

export function desiredService(o: Pick<KubeDNSOptions, "serviceIP" | "port">): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: KUBE_DNS_SERVICE, namespace: KUBE_DNS_NAMESPACE, labels: { "k8s-app": "kube-dns", "kubernetes.io/name": "kubelab-dns" } },
    spec: {
      type: "ClusterIP",
      clusterIP: o.serviceIP,
      clusterIPs: [o.serviceIP],
      ports: desiredPorts(o.port),
    },
  };
}

function desiredPorts(port: number): ServicePort[] {
  return [
    { name: "dns", protocol: "UDP", port: 53, targetPort: port },
    { name: "dns-tcp", protocol: "TCP", port: 53, targetPort: port },
  ];
}

export function sliceName(name: string): string {
  return `${KUBE_DNS_SERVICE}-${name}`;
}

export function desiredSlice(o: Pick<KubeDNSOptions, "address" | "port" | "name" | "zone">): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: sliceName(o.name),
      namespace: KUBE_DNS_NAMESPACE,
      labels: { [LabelServiceName]: KUBE_DNS_SERVICE, [LabelManagedBy]: DNS_SLICE_MANAGER, "k8s-app": "kube-dns" },
    },
    addressType: "IPv4",
    endpoints: [{ addresses: [o.address], conditions: { ready: true, serving: true, terminating: false }, ...(o.zone ? { zone: o.zone } : {}) }],
    ports: [
      { name: "dns", protocol: "UDP", port: o.port },
      { name: "dns-tcp", protocol: "TCP", port: o.port },
    ],
  };
}

function samePorts(a: readonly ServicePort[] | undefined, b: readonly ServicePort[]): boolean {
  const norm = (ps: readonly ServicePort[]) =>
    ps.map((p) => `${p.name ?? ""}/${p.protocol ?? "TCP"}/${p.port}/${p.targetPort ?? p.port}`).sort().join(",");
  return norm(a ?? []) === norm(b);
}

function json(v: unknown): string {
  return JSON.stringify(v ?? null);
}

export class KubeDNSKeeper {
  private kickFn?: () => void;
  private reportedIP?: string;

  constructor(private readonly o: KubeDNSOptions) {}

  /** Ask for a sync soon (an informer saw the Service or the slice change). */
  kick(): void {
    this.kickFn?.();
  }

  /** One pass: create or fix the Service, then the slice. Throws on API errors (the caller retries). */
  async sync(ctx: Context): Promise<void> {
    await this.syncService(ctx);
    await this.syncSlice(ctx);
  }

  private async syncService(ctx: Context): Promise<void> {
    const api = this.o.client.resource<Service>("", "services");
    const want = desiredService(this.o);
    const cur = this.o.services.get(`${KUBE_DNS_NAMESPACE}/${KUBE_DNS_SERVICE}`);
    if (!cur) {
      try {
        await api.create(KUBE_DNS_NAMESPACE, want);
        ctx.log.info({ clusterIP: this.o.serviceIP }, "created Service kube-system/kube-dns");
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
      return;
    }
    const spec = cur.spec ?? {};
    if (spec.clusterIP !== this.o.serviceIP) {
      if (this.reportedIP !== spec.clusterIP) {
        this.reportedIP = spec.clusterIP;
        ctx.log.error(
          { clusterIP: spec.clusterIP, want: this.o.serviceIP },
          `Service kube-system/kube-dns exists with clusterIP ${spec.clusterIP}, not ${this.o.serviceIP}; leaving it alone (clusterIP is immutable) and serving anyway`,
        );
      }
      return;
    }
    this.reportedIP = undefined;
    const labelsOK = cur.metadata.labels?.["k8s-app"] === "kube-dns";
    const selectorOK = !spec.selector || Object.keys(spec.selector).length === 0;
    if (labelsOK && selectorOK && (spec.type ?? "ClusterIP") === "ClusterIP" && samePorts(spec.ports, want.spec!.ports!)) return;
    const next = structuredClone(cur) as Service;
    next.metadata.labels = { ...next.metadata.labels, ...want.metadata.labels };
    next.spec = { ...next.spec, type: "ClusterIP", ports: want.spec!.ports };
    delete next.spec.selector;
    try {
      await api.update(next);
      ctx.log.info("fixed Service kube-system/kube-dns");
    } catch (e) {
      if (!isConflict(e) && !isNotFound(e)) throw e;
    }
  }

  private async syncSlice(ctx: Context): Promise<void> {
    const api = this.o.client.resource<EndpointSlice>("discovery.k8s.io", "endpointslices");
    const want = desiredSlice(this.o);
    const name = want.metadata.name!;
    const cur = this.o.endpointSlices.get(`${KUBE_DNS_NAMESPACE}/${name}`);
    if (!cur) {
      try {
        await api.create(KUBE_DNS_NAMESPACE, want);
        ctx.log.info({ slice: name, address: this.o.address, port: this.o.port }, "published our EndpointSlice");
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
      }
      return;
    }
    if (cur.addressType !== want.addressType) {
      // addressType is immutable: replace the slice.
      await api.delete(KUBE_DNS_NAMESPACE, name).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
      return;
    }
    const labels = cur.metadata.labels ?? {};
    const labelsOK = Object.entries(want.metadata.labels!).every(([k, v]) => labels[k] === v);
    if (labelsOK && json(cur.endpoints) === json(want.endpoints) && json(cur.ports) === json(want.ports)) return;
    const next = structuredClone(cur) as EndpointSlice;
    next.metadata.labels = { ...labels, ...want.metadata.labels };
    next.endpoints = want.endpoints;
    next.ports = want.ports;
    try {
      await api.update(next);
      ctx.log.info({ slice: name }, "fixed our EndpointSlice");
    } catch (e) {
      if (!isConflict(e) && !isNotFound(e)) throw e;
    }
  }

  /** Deletes our slice (on shutdown), so the kube-dns Service stops sending queries here. */
  async removeSlice(): Promise<void> {
    try {
      await this.o.client.resource<EndpointSlice>("discovery.k8s.io", "endpointslices").delete(KUBE_DNS_NAMESPACE, sliceName(this.o.name));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Syncs on every kick and at least every 30 s; failures retry with backoff 1 s → 30 s. Until ctx aborts. */
  async run(ctx: Context): Promise<void> {
    const clock = this.o.clock ?? realClock;
    let wake = new AbortController();
    const onStop = () => wake.abort();
    ctx.signal.addEventListener("abort", onStop, { once: true });
    this.kickFn = () => wake.abort();
    let backoff = 1000;
    try {
      while (!ctx.signal.aborted) {
        // A fresh wake-up per pass, made before the sync so that a kick during it is not lost.
        const w = (wake = new AbortController());
        if (ctx.signal.aborted) break;
        try {
          await this.sync(ctx);
          backoff = 1000;
        } catch (e) {
          ctx.log.warn({ err: e, retryMs: backoff }, "keeping kube-dns Service and EndpointSlice failed");
          // Kicks do not cut a backoff short.
          await clock.sleep(backoff, ctx.signal);
          backoff = Math.min(backoff * 2, 30_000);
          continue;
        }
        await clock.sleep(30_000, w.signal);
      }
    } finally {
      ctx.signal.removeEventListener("abort", onStop);
      this.kickFn = undefined;
    }
  }
}
