// The set of resource stores the apiserver serves, each with its strategy, over one Backend.

import { RESOURCES, SYSTEM_PRIORITY_CLASSES, type KubeObject, type ResourceInfo } from "../../api/index.ts";
import type { UserInfo } from "../auth.ts";
import { WatchCache, type Backend, type KeyValue } from "../storage/index.ts";
import { errors } from "../errors.ts";
import type { StorageMetrics } from "../metrics.ts";
import { Store, rfc3339 } from "./store.ts";
import { DEFAULT_ADMISSION_OPTIONS, genericStrategy, type AdmissionOptions, type Strategy, type StrategyContext } from "./strategy.ts";
import { podStrategy } from "./core/pods/strategy.ts";
import { namespaceStrategy } from "./core/namespaces/strategy.ts";
import { serviceStrategy } from "./core/services/strategy.ts";
import { ServiceStore } from "./core/services/store.ts";
import { ServiceAllocator, reportRepair, type RepairReport, type ServiceRangeOptions } from "./core/services/allocations.ts";
import { nodeStrategy } from "./core/nodes/strategy.ts";
import { deploymentStrategy } from "./apps/deployments/strategy.ts";
import { replicaSetStrategy } from "./apps/replicasets/strategy.ts";
import { daemonSetStrategy } from "./apps/daemonsets/strategy.ts";
import { statefulSetStrategy } from "./apps/statefulsets/strategy.ts";
import { controllerRevisionStrategy } from "./apps/controllerrevisions/strategy.ts";
import { jobStrategy } from "./batch/jobs/strategy.ts";
import { cronJobStrategy } from "./batch/cronjobs/strategy.ts";
import { podDisruptionBudgetStrategy } from "./policy/poddisruptionbudgets/strategy.ts";
import { priorityClassStrategy } from "./scheduling/priorityclasses/strategy.ts";
import { resourceQuotaStrategy } from "./core/resourcequotas/strategy.ts";
import { limitRangeStrategy } from "./core/limitranges/strategy.ts";
import { persistentVolumeStrategy } from "./core/persistentvolumes/strategy.ts";
import { persistentVolumeClaimStrategy } from "./core/persistentvolumeclaims/strategy.ts";
import { csiDriverStrategy } from "./storage/csidrivers/strategy.ts";
import { bindingStrategy, roleStrategy } from "./rbac/strategy.ts";
import { certificateSigningRequestStrategy } from "./certificates/certificatesigningrequests/strategy.ts";
import { CertificateSigningRequestRequester } from "../admission/certificatesigningrequest.ts";
import { AdmissionChain, DefaultIngressClass, DefaultStorageClass, LimitRanger, PersistentVolumeClaimResize, ResourceQuotaAdmission, ServerlessProfileAdmission, StorageObjectInUseProtection } from "../admission/index.ts";
import type { ConfigMap, IngressClass, ServiceAccount, StorageClass } from "../../api/index.ts";
import { PodIdentityAdmission } from "../admission/podidentity.ts";
import type { LimitRange, ResourceQuota } from "../../api/index.ts";

const STRATEGIES: Record<string, (info: ResourceInfo) => Strategy> = {
  "/pods": podStrategy,
  "/namespaces": namespaceStrategy,
  "/services": serviceStrategy,
  "/nodes": nodeStrategy,
  "apps/deployments": deploymentStrategy,
  "apps/replicasets": replicaSetStrategy,
  "apps/daemonsets": daemonSetStrategy,
  "apps/statefulsets": statefulSetStrategy,
  "apps/controllerrevisions": controllerRevisionStrategy,
  "batch/jobs": jobStrategy,
  "batch/cronjobs": cronJobStrategy,
  "policy/poddisruptionbudgets": podDisruptionBudgetStrategy,
  "scheduling.k8s.io/priorityclasses": priorityClassStrategy,
  "/resourcequotas": resourceQuotaStrategy,
  "/limitranges": limitRangeStrategy,
  "/persistentvolumes": persistentVolumeStrategy,
  "/persistentvolumeclaims": persistentVolumeClaimStrategy,
  "storage.k8s.io/csidrivers": csiDriverStrategy,
  "rbac.authorization.k8s.io/roles": roleStrategy,
  "rbac.authorization.k8s.io/clusterroles": roleStrategy,
  "rbac.authorization.k8s.io/rolebindings": bindingStrategy,
  "rbac.authorization.k8s.io/clusterrolebindings": bindingStrategy,
  "certificates.k8s.io/certificatesigningrequests": certificateSigningRequestStrategy,
};

/** Namespaces every cluster has, created at startup as the apiserver's bootstrap controller does. */
/** Recent events kept for watches that resume from an older resourceVersion (all resources together). */
const WATCH_CACHE_CAPACITY = 20_000;

export const SYSTEM_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"];

/** Who asks a virtual create or a subresource handler, and how. */
export interface RequestContext {
  user: UserInfo;
  /** The request's namespace ("" for cluster-scoped resources). */
  namespace: string;
  dryRun: boolean;
}

/** Answers a create of a resource with no storage (TokenReview, SubjectAccessReview...): the response object. */
export type VirtualCreate = (obj: KubeObject, req: RequestContext) => Promise<KubeObject> | KubeObject;

/** Answers a POST to a subresource served by code outside the stores (serviceaccounts/token): the response object. */
export type SubresourceCreate = (name: string, body: KubeObject, req: RequestContext) => Promise<KubeObject> | KubeObject;

/** The registry's settings: admission plugins and the Service ranges (--service-cluster-ip-range, --service-node-port-range). */
export interface RegistryOptions extends AdmissionOptions, ServiceRangeOptions {}

export class Registry {
  private readonly stores = new Map<string, Store>();
  private readonly byResource = new Map<string, Store>();
  readonly ctx: StrategyContext;
  /** One watch cache over /registry/ shared by every resource (see Store). */
  readonly cache: WatchCache<KubeObject>;
  /** The admission plugins the stores run on create and update (LimitRanger, ResourceQuota). */
  readonly admission: AdmissionChain;
  /** The ClusterIP and NodePort bitmaps (kept in the store under /registry/ranges/). */
  readonly services: ServiceAllocator;
  /** What the Service allocation repair found at start. */
  serviceRepair?: RepairReport;
  private readonly virtuals = new Map<string, VirtualCreate>();
  private readonly subresourceCreates = new Map<string, SubresourceCreate>();
  private readonly startHooks: (() => Promise<void>)[] = [];

  constructor(
    readonly backend: Backend,
    metrics?: StorageMetrics,
    now: () => Date = () => new Date(),
    admission: RegistryOptions = DEFAULT_ADMISSION_OPTIONS,
  ) {
    this.ctx = { registry: this, now, admission };
    this.services = new ServiceAllocator(backend, admission);
    this.cache = new WatchCache<KubeObject>(backend, "/registry/", (kv) => this.decode(kv), {
      capacity: WATCH_CACHE_CAPACITY,
      withRevision: (obj, rev) => ({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(rev) } }),
    });
    for (const info of RESOURCES) {
      const make = STRATEGIES[`${info.group}/${info.resource}`] ?? ((i: ResourceInfo) => genericStrategy(i));
      const store =
        info.group === "" && info.resource === "services"
          ? new ServiceStore(make(info), backend, this.ctx, this.cache, metrics, this.services)
          : new Store(make(info), backend, this.ctx, this.cache, metrics);
      this.stores.set(`${info.group}/${info.resource}`, store);
      this.byResource.set(info.resource, store);
    }
    const limitRanger = new LimitRanger((ns) => this.cachedIn<LimitRange>("limitranges", ns));
    const quota = new ResourceQuotaAdmission(
      {
        cached: (ns) => this.cachedIn<ResourceQuota>("resourcequotas", ns),
        get: async (ns, name) => {
          try {
            return (await this.store("", "resourcequotas").get(ns, name)) as ResourceQuota;
          } catch (e) {
            if ((e as { code?: number }).code === 404) return undefined;
            throw e;
          }
        },
        updateStatus: async (q) =>
          (await this.store("", "resourcequotas").update(q.metadata.namespace ?? "", q.metadata.name ?? "", () => structuredClone(q), { subresource: "status" })).obj as ResourceQuota,
      },
      now,
    );
    const storageClasses = (): StorageClass[] =>
      this.store("storage.k8s.io", "storageclasses").cache.list("/registry/storageclasses/").items.map((i) => i.obj as StorageClass);
    const ingressClasses = (): IngressClass[] =>
      this.store("networking.k8s.io", "ingressclasses").cache.list("/registry/ingressclasses/").items.map((i) => i.obj as IngressClass);
    // Upstream's order: LimitRanger, …, DefaultStorageClass, StorageObjectInUseProtection, PersistentVolumeClaimResize, DefaultIngressClass, …, ResourceQuota;
    // ServerlessProfile last among the mutating ones, where MutatingAdmissionWebhook (EKS's Fargate webhook) runs.
    this.admission = new AdmissionChain(
      [limitRanger, new DefaultStorageClass(storageClasses), new StorageObjectInUseProtection(), new DefaultIngressClass(ingressClasses), new ServerlessProfileAdmission((ns) => this.cachedIn<ConfigMap>("configmaps", ns))],
      [limitRanger, new PersistentVolumeClaimResize(storageClasses), quota],
    );
    this.admission.add({ mutating: new CertificateSigningRequestRequester() });
    // EKS's pod identity webhook (IRSA), where MutatingAdmissionWebhook runs: last of the mutating plugins.
    this.admission.add({ mutating: new PodIdentityAdmission((ns, name) => this.cachedIn<ServiceAccount>("serviceaccounts", ns).find((sa) => sa.metadata.name === name)) });
  }

  /** Decodes a stored object by the resource segment of its key, /registry/<resource>/... */
  private decode(kv: KeyValue): KubeObject {
    const resource = kv.key.slice("/registry/".length, kv.key.indexOf("/", "/registry/".length));
    // The allocators' bitmaps (RangeAllocation objects) live beside the resources but are not served.
    if (resource === "ranges") return JSON.parse(kv.value) as KubeObject;
    const store = this.byResource.get(resource);
    if (!store) throw new Error(`no resource for key ${kv.key}`);
    return store.decode(kv);
  }

  store(group: string, resource: string): Store {
    const s = this.stores.get(`${group}/${resource}`);
    if (!s) throw new Error(`no store for ${group}/${resource}`);
    return s;
  }

  find(group: string, resource: string): Store | undefined {
    return this.stores.get(`${group}/${resource}`);
  }

  all(): Store[] {
    return [...this.stores.values()];
  }

  /** Serves creates of a storage-less resource (a review) with `fn`; until then such a create is 404. */
  registerVirtual(group: string, resource: string, fn: VirtualCreate): void {
    this.virtuals.set(`${group}/${resource}`, fn);
  }

  virtual(group: string, resource: string): VirtualCreate | undefined {
    return this.virtuals.get(`${group}/${resource}`);
  }

  /** Serves POST <resource>/<name>/<subresource> with `fn` (serviceaccounts/token). */
  registerSubresourceCreate(group: string, resource: string, subresource: string, fn: SubresourceCreate): void {
    this.subresourceCreates.set(`${group}/${resource}/${subresource}`, fn);
  }

  subresourceCreate(group: string, resource: string, subresource: string): SubresourceCreate | undefined {
    return this.subresourceCreates.get(`${group}/${resource}/${subresource}`);
  }

  /** Runs `fn` at start, after the watch cache is up and the system namespaces exist (upstream's post-start hooks: RBAC bootstrap). */
  onStart(fn: () => Promise<void>): void {
    this.startHooks.push(fn);
  }

  /** Starts every watch cache and creates the system namespaces. */
  async start(): Promise<void> {
    // The Service allocation repair runs before anything is served, as kube-apiserver's first pass.
    this.serviceRepair = await this.services.repair();
    await this.cache.start();
    const pcs = this.store("scheduling.k8s.io", "priorityclasses");
    for (const pc of SYSTEM_PRIORITY_CLASSES) {
      try {
        await pcs.create("", { apiVersion: "scheduling.k8s.io/v1", kind: "PriorityClass", metadata: { name: pc.name }, value: pc.value, description: pc.description });
      } catch (e) {
        if (!(typeof e === "object" && e !== null && (e as { code?: number }).code === 409)) throw e;
      }
    }
    const ns = this.store("", "namespaces");
    for (const name of SYSTEM_NAMESPACES) {
      try {
        await ns.create("", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
      } catch (e) {
        if (!(typeof e === "object" && e !== null && (e as { code?: number }).code === 409)) throw e;
      }
    }
    await reportRepair(this, this.serviceRepair);
    for (const hook of this.startHooks) await hook();
  }

  stop(): void {
    this.cache.stop();
  }

  /** NamespaceLifecycle admission: objects are created only in namespaces that exist and are not terminating. */
  async checkNamespaceAcceptsCreate(namespace: string, gr: { group: string; resource: string }, name: string): Promise<void> {
    if (!namespace) throw errors.badRequest("the server could not find the requested resource: a namespace is required");
    let ns: KubeObject | undefined = this.namespaceFromCache(namespace);
    if (!ns) {
      try {
        ns = await this.store("", "namespaces").get("", namespace);
      } catch {
        throw errors.notFound({ group: "", resource: "namespaces" }, namespace);
      }
    }
    if (ns.metadata.deletionTimestamp || (ns.status as { phase?: string } | undefined)?.phase === "Terminating") {
      throw errors.forbidden(gr, name, `unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  /** A core resource's objects in one namespace, as the watch cache has them (read-only). */
  private cachedIn<T extends KubeObject>(resource: string, namespace: string): T[] {
    return this.store("", resource).cache.list(`/registry/${resource}/${namespace}/`).items.map((i) => i.obj as T);
  }

  private namespaceFromCache(name: string): KubeObject | undefined {
    const items = this.store("", "namespaces").cache.list(`/registry/namespaces/${name}`).items;
    return items.find((i) => i.obj.metadata.name === name)?.obj;
  }

  now(): string {
    return rfc3339(this.ctx.now());
  }
}
