// Defaulting: fills unset fields in place the way Kubernetes' versioned defaulters
// (SetDefaults_Pod, SetDefaults_Deployment, …) do when an object is decoded by the apiserver.

import { JobControllerUidLabel, JobNameLabel, LegacyJobControllerUidLabel, LegacyJobNameLabel } from "./batch/v1.ts";
import type { KubeObject } from "./meta.ts";
import { arr, isRec, rec, type Rec } from "./validation/util.ts";

/** Sets o[k] = v when o[k] is undefined or null. */
function def(o: Rec, k: string, v: unknown): void {
  if (o[k] === undefined || o[k] === null) o[k] = v;
}

/** Returns o[k] as an object, creating {} when unset. */
function ensure(o: Rec, k: string): Rec {
  if (!isRec(o[k])) o[k] = {};
  return o[k] as Rec;
}

/** "Always" for an untagged or ":latest" image, else "IfNotPresent" (digests count as tagged). */
export function defaultImagePullPolicy(image: string): "Always" | "IfNotPresent" {
  if (image.includes("@")) return "IfNotPresent";
  const lastSlash = image.lastIndexOf("/");
  const lastColon = image.lastIndexOf(":");
  if (lastColon <= lastSlash) return "Always";
  return image.slice(lastColon + 1) === "latest" ? "Always" : "IfNotPresent";
}

function defaultProbe(p: unknown): void {
  if (!isRec(p)) return;
  def(p, "timeoutSeconds", 1);
  def(p, "periodSeconds", 10);
  def(p, "successThreshold", 1);
  def(p, "failureThreshold", 3);
  defaultHandler(p);
}

function defaultHandler(h: Rec): void {
  if (isRec(h.httpGet)) {
    def(h.httpGet, "path", "/");
    def(h.httpGet, "scheme", "HTTP");
  }
}

/** Numbers are accepted for quantities on input; Kubernetes always writes them back as strings. */
function canonicalizeQuantities(list: unknown): void {
  if (!isRec(list)) return;
  for (const [k, v] of Object.entries(list)) if (typeof v === "number") list[k] = String(v);
}

function defaultContainer(c: unknown): void {
  if (!isRec(c)) return;
  def(c, "terminationMessagePath", "/dev/termination-log");
  def(c, "terminationMessagePolicy", "File");
  if (typeof c.image === "string" && c.image !== "") def(c, "imagePullPolicy", defaultImagePullPolicy(c.image));
  for (const p of arr(c.ports)) if (isRec(p)) def(p, "protocol", "TCP");
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  if (isRec(c.lifecycle)) {
    if (isRec(c.lifecycle.postStart)) defaultHandler(c.lifecycle.postStart);
    if (isRec(c.lifecycle.preStop)) defaultHandler(c.lifecycle.preStop);
  }
  for (const e of arr(c.env)) {
    const fr = rec(rec(rec(e).valueFrom).fieldRef);
    if (isRec(rec(rec(e).valueFrom).fieldRef)) def(fr, "apiVersion", "v1");
  }
  if (isRec(c.resources)) {
    canonicalizeQuantities(c.resources.limits);
    canonicalizeQuantities(c.resources.requests);
  }
}

function defaultVolume(v: unknown): void {
  if (!isRec(v)) return;
  const sources = ["hostPath", "emptyDir", "secret", "configMap", "persistentVolumeClaim", "downwardAPI", "projected", "nfs", "csi"];
  if (!sources.some((s) => v[s] !== undefined && v[s] !== null)) v.emptyDir = {};
  if (isRec(v.secret)) def(v.secret, "defaultMode", 0o644);
  if (isRec(v.configMap)) def(v.configMap, "defaultMode", 0o644);
  if (isRec(v.downwardAPI)) def(v.downwardAPI, "defaultMode", 0o644);
  if (isRec(v.projected)) def(v.projected, "defaultMode", 0o644);
  if (isRec(v.hostPath)) def(v.hostPath, "type", "");
}

/** SetDefaults_PodSpec (and the container, volume and probe defaulters it triggers). */
export function defaultPodSpec(spec: unknown): void {
  if (!isRec(spec)) return;
  def(spec, "dnsPolicy", "ClusterFirst");
  def(spec, "restartPolicy", "Always");
  def(spec, "terminationGracePeriodSeconds", 30);
  def(spec, "securityContext", {});
  def(spec, "schedulerName", "default-scheduler");
  def(spec, "enableServiceLinks", true);
  for (const c of arr(spec.initContainers)) defaultContainer(c);
  for (const c of arr(spec.containers)) defaultContainer(c);
  for (const v of arr(spec.volumes)) defaultVolume(v);
  if (spec.hostNetwork === true) {
    // With host networking the container port is the host port.
    for (const c of [...arr(spec.initContainers), ...arr(spec.containers)]) {
      for (const p of arr(rec(c).ports)) if (isRec(p) && (p.hostPort === undefined || p.hostPort === 0)) p.hostPort = p.containerPort;
    }
  }
}

/** SetDefaults_Pod: spec defaults, plus requests copied from limits where unset. */
function defaultPod(obj: Rec): void {
  const spec = obj.spec;
  if (!isRec(spec)) return;
  for (const c of [...arr(spec.initContainers), ...arr(spec.containers)]) {
    const res = rec(rec(c).resources);
    if (!isRec(res.limits)) continue;
    const requests = ensure(res, "requests");
    for (const [k, v] of Object.entries(res.limits)) if (requests[k] === undefined) requests[k] = v;
  }
  defaultPodSpec(spec);
}

function defaultPodTemplate(template: unknown): void {
  if (isRec(template)) defaultPodSpec(template.spec);
}

function defaultDeployment(obj: Rec): void {
  const spec = ensure(obj, "spec");
  def(spec, "replicas", 1);
  const strategy = ensure(spec, "strategy");
  def(strategy, "type", "RollingUpdate");
  if (strategy.type === "RollingUpdate") {
    const ru = ensure(strategy, "rollingUpdate");
    def(ru, "maxUnavailable", "25%");
    def(ru, "maxSurge", "25%");
  }
  def(spec, "revisionHistoryLimit", 10);
  def(spec, "progressDeadlineSeconds", 600);
  defaultPodTemplate(spec.template);
}

/** SetDefaults_DaemonSet: RollingUpdate with maxUnavailable 1 and maxSurge 0, revisionHistoryLimit 10. */
function defaultDaemonSet(obj: Rec): void {
  const spec = ensure(obj, "spec");
  const strategy = ensure(spec, "updateStrategy");
  if (strategy.type === undefined || strategy.type === null || strategy.type === "") strategy.type = "RollingUpdate";
  if (strategy.type === "RollingUpdate") {
    const ru = ensure(strategy, "rollingUpdate");
    def(ru, "maxUnavailable", 1);
    def(ru, "maxSurge", 0);
  }
  def(spec, "revisionHistoryLimit", 10);
  defaultPodTemplate(spec.template);
}

/** SetDefaults_StatefulSet, with MaxUnavailableStatefulSet on (maxUnavailable 1); claim templates as PVCs. */
function defaultStatefulSet(obj: Rec): void {
  const spec = ensure(obj, "spec");
  def(spec, "podManagementPolicy", "OrderedReady");
  const strategy = ensure(spec, "updateStrategy");
  if (strategy.type === undefined || strategy.type === null || strategy.type === "") {
    strategy.type = "RollingUpdate";
    ensure(strategy, "rollingUpdate");
  }
  if (strategy.type === "RollingUpdate" && isRec(strategy.rollingUpdate)) {
    def(strategy.rollingUpdate, "partition", 0);
    def(strategy.rollingUpdate, "maxUnavailable", 1);
  }
  const policy = ensure(spec, "persistentVolumeClaimRetentionPolicy");
  if (!policy.whenDeleted) policy.whenDeleted = "Retain";
  if (!policy.whenScaled) policy.whenScaled = "Retain";
  def(spec, "replicas", 1);
  def(spec, "revisionHistoryLimit", 10);
  defaultPodTemplate(spec.template);
  for (const claim of arr(spec.volumeClaimTemplates)) if (isRec(claim)) defaultPersistentVolumeClaim(claim);
}

function defaultReplicaSet(obj: Rec): void {
  const spec = ensure(obj, "spec");
  def(spec, "replicas", 1);
  defaultPodTemplate(spec.template);
}

/** SetDefaults_Job. The selector is generated at create time by defaultJobSelector. */
function defaultJob(obj: Rec): void {
  const spec = ensure(obj, "spec");
  if ((spec.completions === undefined || spec.completions === null) && (spec.parallelism === undefined || spec.parallelism === null)) {
    spec.completions = 1;
    spec.parallelism = 1;
  }
  def(spec, "parallelism", 1);
  if (spec.backoffLimit === undefined || spec.backoffLimit === null) {
    spec.backoffLimit = spec.backoffLimitPerIndex !== undefined && spec.backoffLimitPerIndex !== null ? 2147483647 : 6;
  }
  const meta = ensure(obj, "metadata");
  const templateLabels = rec(rec(spec.template).metadata).labels;
  if (isRec(templateLabels) && (!isRec(meta.labels) || Object.keys(meta.labels).length === 0)) {
    meta.labels = { ...templateLabels };
  }
  def(spec, "completionMode", "NonIndexed");
  def(spec, "suspend", false);
  def(spec, "podReplacementPolicy", isRec(spec.podFailurePolicy) ? "Failed" : "TerminatingOrFailed");
  if (isRec(spec.podFailurePolicy)) {
    for (const r of arr(spec.podFailurePolicy.rules)) {
      for (const p of arr(rec(r).onPodConditions)) if (isRec(p)) def(p, "status", "True");
    }
  }
  defaultPodTemplate(spec.template);
}

/** SetDefaults_CronJob, and the pod defaults of its job template (SetDefaults_Job is for Jobs only). */
function defaultCronJob(obj: Rec): void {
  const spec = ensure(obj, "spec");
  if (spec.concurrencyPolicy === undefined || spec.concurrencyPolicy === null || spec.concurrencyPolicy === "") spec.concurrencyPolicy = "Allow";
  def(spec, "suspend", false);
  def(spec, "successfulJobsHistoryLimit", 3);
  def(spec, "failedJobsHistoryLimit", 1);
  defaultPodTemplate(rec(rec(spec.jobTemplate).spec).template);
}

/**
 * The job's generated selector (batch's generateSelector): unless spec.manualSelector is true,
 * adds `batch.kubernetes.io/controller-uid`/`controller-uid` = uid and
 * `batch.kubernetes.io/job-name`/`job-name` = name to the pod template's labels (keeping labels
 * the user set, which validation then rejects if they conflict) and selects on the uid label.
 * Called by the apiserver at create, once the uid is assigned. Mutates in place.
 */
export function defaultJobSelector(job: KubeObject, uid: string): void {
  const spec = ensure(job as Rec, "spec");
  if (spec.manualSelector === true) return;
  const template = ensure(spec, "template");
  const tmeta = ensure(template, "metadata");
  const labels = ensure(tmeta, "labels");
  const name = job.metadata?.name ?? "";
  for (const k of [LegacyJobNameLabel, JobNameLabel]) if (!(k in labels)) labels[k] = name;
  for (const k of [LegacyJobControllerUidLabel, JobControllerUidLabel]) if (!(k in labels)) labels[k] = uid;
  const selector = ensure(spec, "selector");
  const matchLabels = ensure(selector, "matchLabels");
  if (!(JobControllerUidLabel in matchLabels)) matchLabels[JobControllerUidLabel] = uid;
}

function defaultService(obj: Rec): void {
  const spec = ensure(obj, "spec");
  def(spec, "type", "ClusterIP");
  def(spec, "sessionAffinity", "None");
  if (spec.sessionAffinity === "ClientIP") {
    const cfg = ensure(spec, "sessionAffinityConfig");
    const cip = ensure(cfg, "clientIP");
    def(cip, "timeoutSeconds", 10800);
  }
  for (const p of arr(spec.ports)) {
    if (!isRec(p)) continue;
    def(p, "protocol", "TCP");
    if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === "") p.targetPort = p.port;
  }
  if (spec.type !== "ExternalName") {
    def(spec, "ipFamilyPolicy", "SingleStack");
    def(spec, "internalTrafficPolicy", "Cluster");
  }
  if ((spec.type === "NodePort" || spec.type === "LoadBalancer") && (spec.externalTrafficPolicy === undefined || spec.externalTrafficPolicy === "")) {
    spec.externalTrafficPolicy = "Cluster";
  }
  if (spec.type === "LoadBalancer") def(spec, "allocateLoadBalancerNodePorts", true);
}

function defaultNamespace(obj: Rec): void {
  const status = ensure(obj, "status");
  def(status, "phase", "Active");
  const spec = ensure(obj, "spec");
  def(spec, "finalizers", ["kubernetes"]);
}

function defaultPersistentVolume(obj: Rec): void {
  const spec = ensure(obj, "spec");
  def(spec, "persistentVolumeReclaimPolicy", "Retain");
  def(spec, "volumeMode", "Filesystem");
  const status = ensure(obj, "status");
  def(status, "phase", "Pending");
}

function defaultPersistentVolumeClaim(obj: Rec): void {
  const spec = ensure(obj, "spec");
  def(spec, "volumeMode", "Filesystem");
  const status = ensure(obj, "status");
  def(status, "phase", "Pending");
}

function defaultEndpoints(obj: Rec): void {
  for (const s of arr(obj.subsets)) for (const p of arr(rec(s).ports)) if (isRec(p)) def(p, "protocol", "TCP");
}

function defaultEndpointSlice(obj: Rec): void {
  for (const p of arr(obj.ports)) {
    if (!isRec(p)) continue;
    def(p, "protocol", "TCP");
    def(p, "name", "");
  }
}

function defaultStorageClass(obj: Rec): void {
  def(obj, "reclaimPolicy", "Delete");
  def(obj, "volumeBindingMode", "Immediate");
}

function defaultNode(obj: Rec): void {
  // Node has no defaults of note beyond canonical quantities.
  const status = rec(obj.status);
  canonicalizeQuantities(status.capacity);
  canonicalizeQuantities(status.allocatable);
}

/**
 * A Secret's write-only stringData merged into data, overwriting keys of the same name, and dropped —
 * what upstream's v1 → internal conversion does, so it is never stored nor read back.
 */
function convertStringData(o: Rec): void {
  const sd = o.stringData;
  if (sd === undefined) return;
  if (typeof sd === "object" && sd !== null && !Array.isArray(sd) && Object.keys(sd).length > 0) {
    const data = (typeof o.data === "object" && o.data !== null ? o.data : (o.data = {})) as Record<string, unknown>;
    for (const [k, v] of Object.entries(sd as Record<string, unknown>)) if (typeof v === "string") data[k] = Buffer.from(v, "utf8").toString("base64");
  }
  delete o.stringData;
}

/**
 * Fills defaults in place for the object's apiVersion and kind, like the apiserver's decoding
 * defaulters. Idempotent; unknown kinds are left untouched. Does not generate names, uids,
 * cluster IPs or job selectors (the registry does those).
 */
export function applyDefaults(obj: KubeObject): void {
  const o = obj as Rec;
  switch (`${obj.apiVersion ?? ""}/${obj.kind ?? ""}`) {
    case "v1/Pod":
      defaultPod(o);
      break;
    case "v1/PodTemplate":
      defaultPodTemplate(o.template);
      break;
    case "v1/Service":
      defaultService(o);
      break;
    case "v1/Namespace":
      defaultNamespace(o);
      break;
    case "v1/Secret":
      def(o, "type", "Opaque");
      convertStringData(o);
      break;
    case "v1/Node":
      defaultNode(o);
      break;
    case "v1/PersistentVolume":
      defaultPersistentVolume(o);
      break;
    case "v1/PersistentVolumeClaim":
      defaultPersistentVolumeClaim(o);
      break;
    case "v1/Endpoints":
      defaultEndpoints(o);
      break;
    case "apps/v1/Deployment":
      defaultDeployment(o);
      break;
    case "apps/v1/ReplicaSet":
      defaultReplicaSet(o);
      break;
    case "apps/v1/StatefulSet":
      defaultStatefulSet(o);
      break;
    case "apps/v1/DaemonSet":
      defaultDaemonSet(o);
      break;
    case "batch/v1/Job":
      defaultJob(o);
      break;
    case "batch/v1/CronJob":
      defaultCronJob(o);
      break;
    case "discovery.k8s.io/v1/EndpointSlice":
      defaultEndpointSlice(o);
      break;
    case "storage.k8s.io/v1/StorageClass":
      defaultStorageClass(o);
      break;
    default:
      break;
  }
}
