// The `default/kubernetes` Service, as kube-apiserver keeps it (pkg/controlplane/controller/
// kubernetesservice and reconcilers/endpointsadapter.go): a selector-less ClusterIP Service on the
// first address of the service range, port 443 named https pointing at the apiserver's secure port,
// and its Endpoints and EndpointSlice naming this apiserver's advertised address. Pods reach the API
// at https://kubernetes.default.svc through the service proxy, as they do upstream. Reconciled at
// start and then every 10 s (upstream's --endpoint-reconciler interval), so a deleted or edited
// object comes back.

import type { Endpoints, EndpointSlice, KubeObject, Service } from "../api/index.ts";
import type { Logger } from "../client/index.ts";
import type { Registry } from "./registry/registry.ts";

export const KUBERNETES_SERVICE = "kubernetes";
const NAMESPACE = "default";
const INTERVAL_MS = 10_000;

export interface KubernetesServiceOptions {
  /** The address other components reach this apiserver on (--advertise-address; the bind address unless it is 0.0.0.0). */
  advertiseAddress: string;
  /** The apiserver's secure port (the Service's targetPort and the endpoints' port). */
  port: number;
}

const isCode = (e: unknown, code: number): boolean => typeof e === "object" && e !== null && (e as { code?: number }).code === code;

function desiredService(clusterIP: string, port: number): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: KUBERNETES_SERVICE, namespace: NAMESPACE, labels: { component: "apiserver", provider: "kubernetes" } },
    spec: {
      type: "ClusterIP",
      clusterIP,
      clusterIPs: [clusterIP],
      sessionAffinity: "None",
      ports: [{ name: "https", protocol: "TCP", port: 443, targetPort: port }],
    },
  };
}

function desiredEndpoints(ip: string, port: number): Endpoints {
  return {
    apiVersion: "v1",
    kind: "Endpoints",
    metadata: { name: KUBERNETES_SERVICE, namespace: NAMESPACE, labels: { "endpointslice.kubernetes.io/skip-mirror": "true" } },
    subsets: [{ addresses: [{ ip }], ports: [{ name: "https", port, protocol: "TCP" }] }],
  };
}

function desiredSlice(ip: string, port: number): EndpointSlice {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: KUBERNETES_SERVICE, namespace: NAMESPACE, labels: { "kubernetes.io/service-name": KUBERNETES_SERVICE } },
    addressType: "IPv4",
    endpoints: [{ addresses: [ip], conditions: { ready: true } }],
    ports: [{ name: "https", port, protocol: "TCP" }],
  };
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class KubernetesServiceController {
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly opts: KubernetesServiceOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    const loop = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        await this.reconcile();
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, "cannot reconcile the default/kubernetes service; retrying");
      }
      if (!this.stopped) this.timer = setTimeout(() => void loop(), INTERVAL_MS);
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One pass: create what is missing, put back what was changed. */
  async reconcile(): Promise<void> {
    const { advertiseAddress: ip, port } = this.opts;
    const clusterIP = this.registry.services.ipRange.ipAt(0);
    const svc = desiredService(clusterIP, port);
    await this.ensure("", "services", svc, (cur) => {
      const spec = (cur as Service).spec ?? {};
      // The ClusterIP is immutable: a Service made on another range stays (repair reports it).
      if (same(spec.ports, svc.spec!.ports) && spec.selector === undefined && spec.type === "ClusterIP") return undefined;
      return { ...cur, spec: { ...spec, type: "ClusterIP", ports: svc.spec!.ports, selector: undefined } } as KubeObject;
    });
    const eps = desiredEndpoints(ip, port);
    await this.ensure("", "endpoints", eps, (cur) => (same((cur as Endpoints).subsets, eps.subsets) ? undefined : ({ ...cur, subsets: eps.subsets } as KubeObject)));
    const slice = desiredSlice(ip, port);
    await this.ensure("discovery.k8s.io", "endpointslices", slice, (cur) => {
      const c = cur as EndpointSlice;
      if (same(c.endpoints, slice.endpoints) && same(c.ports, slice.ports) && c.metadata.labels?.["kubernetes.io/service-name"] === KUBERNETES_SERVICE) return undefined;
      return { ...c, endpoints: slice.endpoints, ports: slice.ports, metadata: { ...c.metadata, labels: { ...c.metadata.labels, ...slice.metadata.labels } } } as KubeObject;
    });
  }

  /** Creates `want` if missing; otherwise writes `fix(current)` when it returns an object. */
  private async ensure(group: string, resource: string, want: KubeObject, fix: (cur: KubeObject) => KubeObject | undefined): Promise<void> {
    const store = this.registry.store(group, resource);
    const name = want.metadata.name!;
    let cur: KubeObject | undefined;
    try {
      cur = await store.get(NAMESPACE, name);
    } catch (e) {
      if (!isCode(e, 404)) throw e;
    }
    if (!cur) {
      try {
        await store.create(NAMESPACE, structuredClone(want));
        this.log.info({ resource, name: `${NAMESPACE}/${name}` }, "created");
      } catch (e) {
        if (!isCode(e, 409)) throw e; // another apiserver made it first
      }
      return;
    }
    if (!fix(cur)) return;
    await store.update(NAMESPACE, name, (c) => {
      if (!c) throw Object.assign(new Error("gone"), { code: 404 });
      return fix(c) ?? c;
    });
    this.log.info({ resource, name: `${NAMESPACE}/${name}` }, "reconciled");
  }
}
