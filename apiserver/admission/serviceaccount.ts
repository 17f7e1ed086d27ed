// The ServiceAccount admission plugin (upstream plugin/pkg/admission/serviceaccount/admission.go):
// every pod runs as a ServiceAccount ("default" unless it names one), that ServiceAccount must
// exist, and unless automounting is off the pod gets the kube-api-access-<random> projected volume
// (a pod-bound token, the cluster CA, the namespace) mounted read-only in each of its containers.

import { randomInt } from "node:crypto";
import type { Container, KubeObject, Pod, ServiceAccount, Volume } from "../../api/index.ts";
import { forbidden, type AdmissionAttributes, type MutatingPlugin, type ValidatingPlugin } from "./index.ts";

export const PLUGIN_NAME = "ServiceAccount";
export const DEFAULT_SERVICE_ACCOUNT_NAME = "default";
/** The prefix of the generated volume's name. */
export const SERVICE_ACCOUNT_VOLUME_NAME = "kube-api-access";
export const DEFAULT_API_TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";
/** A ServiceAccount with this annotation "true" limits its pods to the secrets it lists. */
export const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION = "kubernetes.io/enforce-mountable-secrets";
const MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror";
/** serviceaccount.WarnOnlyBoundTokenExpirationSeconds: the token the apiserver extends (see tokenrequest.ts). */
const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7;
/** corev1.ProjectedVolumeSourceDefaultMode (0644). */
const PROJECTED_VOLUME_SOURCE_DEFAULT_MODE = 0o644;

/** utilrand's alphabet: no vowels (no words) and no confusable characters. */
const ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789";

/** names.SimpleNameGenerator: base + 5 random characters. */
export function generateName(base: string, rand: (n: number) => number = randomInt): string {
  let s = "";
  for (let i = 0; i < 5; i++) s += ALPHANUMS[rand(ALPHANUMS.length)];
  return base + s;
}

/**
 * upstream's TokenVolumeSource: the projected volume of the API credentials — the token (3607 s, so
 * the apiserver extends it), ca.crt from the kube-root-ca.crt ConfigMap, and the namespace.
 */
export function tokenVolumeSource(): NonNullable<Volume["projected"]> {
  return {
    // explicitly set, as upstream does (kubernetes#104464)
    defaultMode: PROJECTED_VOLUME_SOURCE_DEFAULT_MODE,
    sources: [
      { serviceAccountToken: { expirationSeconds: WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS, path: "token" } },
      { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
      { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
    ],
  };
}

/**
 * Finds a ServiceAccount. `cached` reads the apiserver's watch cache; `live` the store (undefined
 * when it does not exist, rejects on other failures); `sleep` waits between live attempts.
 */
export interface ServiceAccountSource {
  cached(namespace: string, name: string): ServiceAccount | undefined;
  live(namespace: string, name: string): Promise<ServiceAccount | undefined>;
  sleep?(ms: number): Promise<void>;
}

/** A not-found error as upstream's getServiceAccount returns it (note the singular resource). */
class ServiceAccountNotFound extends Error {
  constructor(name: string) {
    super(`serviceaccount "${name}" not found`);
  }
}

function podSpec(pod: KubeObject): NonNullable<Pod["spec"]> {
  const p = pod as Pod;
  p.spec ??= { containers: [] };
  return p.spec;
}

function isPod(a: AdmissionAttributes): boolean {
  // shouldIgnore: pods and their ephemeralcontainers subresource only.
  return a.info.group === "" && a.info.resource === "pods" && (!a.subresource || a.subresource === "ephemeralcontainers");
}

function isMirrorPod(pod: KubeObject): boolean {
  return pod.metadata.annotations?.[MIRROR_POD_ANNOTATION] !== undefined;
}

/** shouldAutomount: the pod's preference wins, then the ServiceAccount's, then true. */
export function shouldAutomount(sa: ServiceAccount, pod: Pod): boolean {
  if (typeof pod.spec?.automountServiceAccountToken === "boolean") return pod.spec.automountServiceAccountToken;
  if (typeof sa.automountServiceAccountToken === "boolean") return sa.automountServiceAccountToken;
  return true;
}

/**
 * mountServiceAccountToken: reuses a kube-api-access-* volume the pod already has, else names a new
 * one; every init container and container without a mount at the token path gets a read-only one,
 * and the volume is added when some container needed it.
 */
export function mountServiceAccountToken(pod: Pod, genName: (base: string) => string = generateName): void {
  const spec = podSpec(pod);
  const existing = (spec.volumes ?? []).find((v) => v.name.startsWith(SERVICE_ACCOUNT_VOLUME_NAME + "-"));
  const volumeName = existing?.name ?? genName(SERVICE_ACCOUNT_VOLUME_NAME + "-");
  let needsTokenVolume = false;
  const mount = (c: Container): void => {
    // An existing mount at the default path keeps the API token out of that container.
    if ((c.volumeMounts ?? []).some((m) => m.mountPath === DEFAULT_API_TOKEN_MOUNT_PATH)) return;
    (c.volumeMounts ??= []).push({ name: volumeName, readOnly: true, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH });
    needsTokenVolume = true;
  };
  for (const c of spec.initContainers ?? []) mount(c);
  for (const c of spec.containers ?? []) mount(c);
  if (!existing && needsTokenVolume) (spec.volumes ??= []).push({ name: volumeName, projected: tokenVolumeSource() });
}

/** The secret names a pod references, by where (podutil.VisitPodSecretNames, less the cloud volume types). */
function podSecretNames(pod: Pod): { volumes: string[]; env: string[]; pullSecrets: string[] } {
  const spec = pod.spec ?? { containers: [] };
  const volumes: string[] = [];
  for (const v of spec.volumes ?? []) {
    if (v.secret?.secretName) volumes.push(v.secret.secretName);
    for (const s of v.projected?.sources ?? []) if (s.secret?.name) volumes.push(s.secret.name);
  }
  const env: string[] = [];
  const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...((spec as { ephemeralContainers?: Container[] }).ephemeralContainers ?? [])];
  for (const c of containers) {
    for (const e of c.envFrom ?? []) if (e.secretRef?.name) env.push(e.secretRef.name);
    for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef?.name) env.push(e.valueFrom.secretKeyRef.name);
  }
  return { volumes, env, pullSecrets: (spec.imagePullSecrets ?? []).map((s) => s.name ?? "").filter(Boolean) };
}

export class ServiceAccountAdmission implements MutatingPlugin, ValidatingPlugin {
  readonly name = PLUGIN_NAME;
  /** MountServiceAccountToken: off only in tests of the plugin's other half. */
  private readonly mountToken: boolean;

  constructor(
    private readonly source: ServiceAccountSource,
    opts: { mountServiceAccountToken?: boolean; generateName?: (base: string) => string } = {},
  ) {
    this.mountToken = opts.mountServiceAccountToken ?? true;
    if (opts.generateName) this.genName = opts.generateName;
  }

  private genName: (base: string) => string = (b) => generateName(b);

  handles(a: AdmissionAttributes): boolean {
    return isPod(a) && (a.operation === "CREATE" || (a.operation === "UPDATE" && a.subresource === "ephemeralcontainers"));
  }

  async admit(a: AdmissionAttributes): Promise<void> {
    if (!isPod(a) || a.operation !== "CREATE" || a.subresource) return;
    const pod = a.object as Pod;
    // Mirror pods are left as the kubelet wrote them (it deletes one whose spec changed); Validate
    // still keeps them from referencing ServiceAccounts or secrets.
    if (isMirrorPod(pod)) return;
    const spec = podSpec(pod);
    if (!spec.serviceAccountName) spec.serviceAccountName = spec.serviceAccount || DEFAULT_SERVICE_ACCOUNT_NAME;
    // v1's deprecated alias is written alongside, as the conversion does.
    spec.serviceAccount = spec.serviceAccountName;
    const sa = await this.lookUp(a, spec.serviceAccountName);
    if (this.mountToken && shouldAutomount(sa, pod)) mountServiceAccountToken(pod, this.genName);
    if (!spec.imagePullSecrets?.length && sa.imagePullSecrets?.length) spec.imagePullSecrets = sa.imagePullSecrets.map((s) => ({ name: s.name }));
  }

  async validate(a: AdmissionAttributes): Promise<void> {
    if (!this.handles(a)) return;
    const pod = a.object as Pod;
    if (a.operation === "UPDATE") return this.limitEphemeralContainerSecretReferences(a, pod);
    if (isMirrorPod(pod)) return validateMirrorPod(a, pod);
    const name = pod.spec?.serviceAccountName;
    if (!name) throw forbidden(a, `no service account specified for pod ${a.namespace}/${pod.metadata.name ?? ""}`);
    const sa = await this.lookUp(a, name);
    if (enforceMountableSecrets(sa)) {
      const why = limitSecretReferences(sa, pod);
      if (why) throw forbidden(a, why);
    }
  }

  private async limitEphemeralContainerSecretReferences(a: AdmissionAttributes, pod: Pod): Promise<void> {
    const name = pod.spec?.serviceAccountName;
    if (!name) return;
    const sa = await this.lookUp(a, name);
    if (!enforceMountableSecrets(sa)) return;
    const mountable = new Set((sa.secrets ?? []).map((s) => s.name));
    const ephemeral = (pod.spec as { ephemeralContainers?: Container[] }).ephemeralContainers ?? [];
    const why = containerSecretRefs("ephemeral container", ephemeral, mountable, sa.metadata.name ?? "");
    if (why) throw forbidden(a, why);
  }

  /**
   * getServiceAccount: the cache, then the store — ten times, 100-200 ms apart, for "default",
   * which the serviceaccount controller creates a moment after its namespace; once for any other.
   */
  private async lookUp(a: AdmissionAttributes, name: string): Promise<ServiceAccount> {
    try {
      return await this.getServiceAccount(a.namespace, name);
    } catch (e) {
      throw forbidden(a, `error looking up service account ${a.namespace}/${name}: ${(e as Error).message}`);
    }
  }

  private async getServiceAccount(namespace: string, name: string): Promise<ServiceAccount> {
    const cached = this.source.cached(namespace, name);
    if (cached) return cached;
    const attempts = name === DEFAULT_SERVICE_ACCOUNT_NAME ? 10 : 1;
    const retryInterval = 100 + randomInt(100);
    const sleep = this.source.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let i = 0; i < attempts; i++) {
      if (i !== 0) await sleep(retryInterval);
      const sa = await this.source.live(namespace, name);
      if (sa) return sa;
    }
    throw new ServiceAccountNotFound(name);
  }
}

function validateMirrorPod(a: AdmissionAttributes, pod: Pod): void {
  if (pod.spec?.serviceAccountName) throw forbidden(a, "a mirror pod may not reference service accounts");
  const refs = podSecretNames(pod);
  if (refs.volumes.length || refs.env.length || refs.pullSecrets.length) throw forbidden(a, "a mirror pod may not reference secrets");
  for (const v of pod.spec?.volumes ?? []) {
    if (v.projected?.sources?.some((s) => s.serviceAccountToken)) throw forbidden(a, "a mirror pod may not use ServiceAccountToken volume projections");
  }
}

/** The ServiceAccount asks for its secrets to be the only ones its pods may use. */
function enforceMountableSecrets(sa: ServiceAccount): boolean {
  return sa.metadata.annotations?.[ENFORCE_MOUNTABLE_SECRETS_ANNOTATION] === "true";
}

/** limitSecretReferences: upstream's message for the first secret the ServiceAccount does not list. */
function limitSecretReferences(sa: ServiceAccount, pod: Pod): string | undefined {
  const mountable = new Set((sa.secrets ?? []).map((s) => s.name));
  const saName = sa.metadata.name ?? "";
  for (const v of pod.spec?.volumes ?? []) {
    const n = v.secret?.secretName;
    if (v.secret && !mountable.has(n)) return `volume with secret.secretName="${n ?? ""}" is not allowed because service account ${saName} does not reference that secret`;
  }
  for (const [what, list] of [["init container", pod.spec?.initContainers ?? []], ["container", pod.spec?.containers ?? []]] as const) {
    const why = containerSecretRefs(what, list, mountable, saName);
    if (why) return why;
  }
  const pullable = new Set((sa.imagePullSecrets ?? []).map((s) => s.name));
  for (const [i, ref] of (pod.spec?.imagePullSecrets ?? []).entries()) {
    if (!pullable.has(ref.name)) return `imagePullSecrets[${i}].name="${ref.name ?? ""}" is not allowed because service account ${saName} does not reference that imagePullSecret`;
  }
  return undefined;
}

/** The env and envFrom half of limitSecretReferences, for one kind of container. */
function containerSecretRefs(what: string, containers: readonly Container[], mountable: ReadonlySet<string | undefined>, saName: string): string | undefined {
  for (const c of containers) {
    for (const e of c.env ?? []) {
      const n = e.valueFrom?.secretKeyRef?.name;
      if (e.valueFrom?.secretKeyRef && !mountable.has(n)) return `${what} ${c.name} with envVar ${e.name} referencing secret.secretName="${n ?? ""}" is not allowed because service account ${saName} does not reference that secret`;
    }
    for (const e of c.envFrom ?? []) {
      const n = e.secretRef?.name;
      if (e.secretRef && !mountable.has(n)) return `${what} ${c.name} with envFrom referencing secret.secretName="${n ?? ""}" is not allowed because service account ${saName} does not reference that secret`;
    }
  }
  return undefined;
}
