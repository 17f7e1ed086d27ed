// Patch metadata for the built-in kinds: which lists merge (and by which key), which are atomic, which
// structs take $retainKeys, which maps are free-form. Written from the patchStrategy / patchMergeKey /
// +listType / +listMapKey / +structType tags in k8s.io/api and k8s.io/apimachinery types.go.
// Anything not described here falls back to JSON-merge-patch behaviour: maps merge, lists are replaced.

/** Metadata of one field of a struct. */
export interface FieldSchema {
  /** patchStrategy:"merge" — lists of objects merge by `mergeKey`, lists of scalars merge as sets. */
  merge?: boolean;
  /** patchMergeKey (strategic merge patch identity of list items). */
  mergeKey?: string;
  /** +listMapKey for server-side apply (defaults to [mergeKey]). */
  listMapKeys?: readonly string[];
  /** Defaults of list map keys that the server fills in (e.g. protocol: TCP). */
  keyDefaults?: Readonly<Record<string, string | number>>;
  /** +listType=atomic even though SMP merges it (e.g. Job status.conditions). */
  applyAtomic?: boolean;
  /** +structType=atomic: server-side apply replaces it whole. */
  atomic?: boolean;
  /** map[string]T: keys are data, not field names. */
  freeForm?: boolean;
  /** patchStrategy includes retainKeys. Informational: $retainKeys is honoured wherever it appears. */
  retainKeys?: boolean;
  /** Schema of the value (a struct) or of each list item. */
  type?: StructSchema;
}

export interface StructSchema {
  readonly fields: Readonly<Record<string, FieldSchema>>;
}

export interface TypeRef {
  apiVersion: string;
  kind: string;
}

const s = (fields: Record<string, FieldSchema>): StructSchema => ({ fields });
const byKey = (mergeKey: string, type?: StructSchema, extra: FieldSchema = {}): FieldSchema => ({
  merge: true,
  mergeKey,
  type,
  ...extra,
});
const freeForm: FieldSchema = { freeForm: true };
const set: FieldSchema = { merge: true };
const conditions: FieldSchema = byKey("type");

// --- meta/v1 -------------------------------------------------------------------------------------

export const objectMeta = s({
  labels: freeForm,
  annotations: freeForm,
  ownerReferences: byKey("uid", s({}), { listMapKeys: ["uid"] }),
  finalizers: set,
});

const labelSelector: FieldSchema = { atomic: true };

// --- core/v1 -------------------------------------------------------------------------------------

const resourceRequirements = s({
  limits: freeForm,
  requests: freeForm,
  claims: { listMapKeys: ["name"] },
});

const container = s({
  ports: byKey("containerPort", undefined, {
    listMapKeys: ["containerPort", "protocol"],
    keyDefaults: { protocol: "TCP" },
  }),
  env: byKey("name"),
  volumeMounts: byKey("mountPath"),
  volumeDevices: byKey("devicePath"),
  resources: { type: resourceRequirements },
  resizePolicy: { listMapKeys: ["resourceName"] },
});

export const podSpec = s({
  volumes: byKey("name", undefined, { retainKeys: true }),
  initContainers: byKey("name", container),
  containers: byKey("name", container),
  ephemeralContainers: byKey("name", container),
  imagePullSecrets: byKey("name"),
  hostAliases: byKey("ip"),
  topologySpreadConstraints: byKey("topologyKey", undefined, { listMapKeys: ["topologyKey", "whenUnsatisfiable"] }),
  schedulingGates: byKey("name"),
  resourceClaims: byKey("name", undefined, { retainKeys: true }),
  nodeSelector: freeForm,
  overhead: freeForm,
  // tolerations, readinessGates: atomic (no patch strategy)
});

const containerStatus = s({
  allocatedResources: freeForm,
  volumeMounts: byKey("mountPath"),
  allocatedResourcesStatus: byKey("name"),
});

const podStatus = s({
  conditions,
  podIPs: byKey("ip"),
  hostIPs: byKey("ip", undefined, { applyAtomic: true }),
  resourceClaimStatuses: byKey("name", undefined, { retainKeys: true }),
  // container statuses: atomic lists
  containerStatuses: { type: containerStatus },
  initContainerStatuses: { type: containerStatus },
  ephemeralContainerStatuses: { type: containerStatus },
});

export const podTemplateSpec = s({ metadata: { type: objectMeta }, spec: { type: podSpec } });

const pod = s({ metadata: { type: objectMeta }, spec: { type: podSpec }, status: { type: podStatus } });

const node = s({
  metadata: { type: objectMeta },
  spec: { type: s({ podCIDRs: set /* taints: atomic */ }) },
  status: {
    type: s({
      conditions,
      addresses: byKey("type"),
      capacity: freeForm,
      allocatable: freeForm,
    }),
  },
});

const service = s({
  metadata: { type: objectMeta },
  spec: {
    type: s({
      ports: byKey("port", undefined, { listMapKeys: ["port", "protocol"], keyDefaults: { protocol: "TCP" } }),
      selector: freeForm,
    }),
  },
  status: { type: s({ conditions }) },
});

const namespace = s({ metadata: { type: objectMeta }, status: { type: s({ conditions }) } });

const serviceAccount = s({ metadata: { type: objectMeta }, secrets: byKey("name") });

const dataMaps = s({ metadata: { type: objectMeta }, data: freeForm, binaryData: freeForm, stringData: freeForm });

const replicationController = s({
  metadata: { type: objectMeta },
  spec: { type: s({ selector: freeForm, template: { type: podTemplateSpec } }) },
  status: { type: s({ conditions }) },
});

const pvc = s({
  metadata: { type: objectMeta },
  spec: { type: s({ resources: { type: resourceRequirements }, selector: labelSelector }) },
  status: { type: s({ conditions, capacity: freeForm, allocatedResources: freeForm }) },
});

const pv = s({ metadata: { type: objectMeta }, spec: { type: s({ capacity: freeForm }) } });

const podTemplate = s({ metadata: { type: objectMeta }, template: { type: podTemplateSpec } });

const onlyMeta = s({ metadata: { type: objectMeta } });

// --- apps/v1, batch/v1, policy/v1 -----------------------------------------------------------------

const workloadStatus = s({ conditions });

const deployment = s({
  metadata: { type: objectMeta },
  spec: {
    type: s({
      selector: labelSelector,
      template: { type: podTemplateSpec },
      strategy: { retainKeys: true },
    }),
  },
  status: { type: workloadStatus },
});

const replicaSet = s({
  metadata: { type: objectMeta },
  spec: { type: s({ selector: labelSelector, template: { type: podTemplateSpec } }) },
  status: { type: workloadStatus },
});

const statefulSet = s({
  metadata: { type: objectMeta },
  spec: {
    type: s({
      selector: labelSelector,
      template: { type: podTemplateSpec },
      // volumeClaimTemplates: atomic
    }),
  },
  status: { type: workloadStatus },
});

const jobSpec = s({ selector: labelSelector, template: { type: podTemplateSpec } });

const job = s({
  metadata: { type: objectMeta },
  spec: { type: jobSpec },
  status: { type: s({ conditions: byKey("type", undefined, { applyAtomic: true }) }) },
});

const cronJob = s({
  metadata: { type: objectMeta },
  spec: { type: s({ jobTemplate: { type: s({ metadata: { type: objectMeta }, spec: { type: jobSpec } }) } }) },
});

const pdb = s({
  metadata: { type: objectMeta },
  spec: { type: s({ selector: labelSelector }) },
  status: { type: s({ conditions, disruptedPods: freeForm }) },
});

// --- networking/v1 ---------------------------------------------------------------------------------

const ingress = s({
  metadata: { type: objectMeta },
  // rules, tls, paths, loadBalancer ingress: all atomic lists
});

const ingressClass = onlyMeta;

const networkPolicy = s({ metadata: { type: objectMeta }, spec: { type: s({ podSelector: labelSelector }) } });

// --- table -----------------------------------------------------------------------------------------

/** Keyed by "<group>/<Kind>" (core group is ""); any version of the group matches. */
const TABLE: Readonly<Record<string, StructSchema>> = {
  "/Pod": pod,
  "/PodTemplate": podTemplate,
  "/ReplicationController": replicationController,
  "/Node": node,
  "/Service": service,
  "/Namespace": namespace,
  "/ServiceAccount": serviceAccount,
  "/ConfigMap": dataMaps,
  "/Secret": dataMaps,
  "/PersistentVolumeClaim": pvc,
  "/PersistentVolume": pv,
  "/Endpoints": onlyMeta, // subsets: atomic
  "/Event": onlyMeta,
  "/LimitRange": onlyMeta,
  "/ResourceQuota": s({
    metadata: { type: objectMeta },
    spec: { type: s({ hard: freeForm }) },
    status: { type: s({ hard: freeForm, used: freeForm }) },
  }),
  "apps/Deployment": deployment,
  "apps/ReplicaSet": replicaSet,
  "apps/StatefulSet": statefulSet,
  "apps/DaemonSet": replicaSet,
  "apps/ControllerRevision": onlyMeta,
  "batch/Job": job,
  "batch/CronJob": cronJob,
  "policy/PodDisruptionBudget": pdb,
  "networking.k8s.io/Ingress": ingress,
  "networking.k8s.io/IngressClass": ingressClass,
  "networking.k8s.io/NetworkPolicy": networkPolicy,
  "discovery.k8s.io/EndpointSlice": onlyMeta, // endpoints, ports: atomic
  "coordination.k8s.io/Lease": onlyMeta,
  "storage.k8s.io/StorageClass": onlyMeta,
  "autoscaling/Scale": s({ spec: {}, status: {} }),
};

export function groupOf(apiVersion: string): string {
  const i = apiVersion.lastIndexOf("/");
  return i < 0 ? "" : apiVersion.slice(0, i);
}

/** The patch schema of a built-in kind, or undefined for kinds we do not know (CRDs). */
export function schemaFor(type: TypeRef): StructSchema | undefined {
  return TABLE[`${groupOf(type.apiVersion)}/${type.kind}`];
}

/** Schema of one field of a struct; undefined when unknown (fallback semantics). */
export function fieldOf(schema: StructSchema | undefined, key: string): FieldSchema | undefined {
  if (!schema) return undefined;
  return Object.prototype.hasOwnProperty.call(schema.fields, key) ? schema.fields[key] : undefined;
}
