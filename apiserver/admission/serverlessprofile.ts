// The ServerlessProfile admission plugin, kubelab's EKS Fargate mutating webhook: a new pod that a
// serverless profile selects (its namespace, and labels including the selector's) and that would go
// to the default scheduler is handed to the serverless scheduler instead — spec.schedulerName
// kubelab-serverless-scheduler and an annotation naming the profile, as EKS sets fargate-scheduler
// and eks.amazonaws.com/fargate-profile. The profiles come from the ConfigMap the cloud controller
// writes (kube-system/kubelab-serverless-profiles); without it the plugin does nothing.

import type { ConfigMap, Pod } from "../../api/index.ts";
import { CLOUD_NAMESPACE, SERVERLESS_PROFILE_LABEL, SERVERLESS_PROFILES_CONFIGMAP, SERVERLESS_SCHEDULER, type ServerlessProfile } from "../../controllers/cloud/types.ts";
import type { AdmissionAttributes, MutatingPlugin } from "./index.ts";

/** Where the plugin reads a namespace's ConfigMaps (the apiserver's watch cache). */
export type ConfigMapSource = (namespace: string) => readonly ConfigMap[];

const DEFAULT_SCHEDULER = "default-scheduler";

/**
 * The profiles a profiles ConfigMap lists, in order; [] when data.profiles is missing or not a JSON
 * list of profiles (a hand-edited ConfigMap must not make every pod create fail).
 */
export function parseServerlessProfiles(cm: Readonly<ConfigMap> | undefined): ServerlessProfile[] {
  const raw = cm?.data?.profiles;
  if (!raw) return [];
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return [];
  }
  if (!Array.isArray(v)) return [];
  return v.filter(
    (p): p is ServerlessProfile =>
      typeof p === "object" && p !== null && typeof (p as ServerlessProfile).name === "string" && Array.isArray((p as ServerlessProfile).selectors),
  );
}

/** A selector admits a pod of its namespace whose labels include all of the selector's. */
export function selectorMatches(sel: Readonly<ServerlessProfile["selectors"][number]>, namespace: string, labels: Readonly<Record<string, string>> | undefined): boolean {
  if (sel.namespace !== namespace) return false;
  return Object.entries(sel.labels ?? {}).every(([k, v]) => labels?.[k] === v);
}

/** The first profile (in order) with a selector admitting the pod, as Fargate picks among profiles. */
export function matchingProfile(profiles: readonly ServerlessProfile[], namespace: string, labels: Readonly<Record<string, string>> | undefined): ServerlessProfile | undefined {
  return profiles.find((p) => p.selectors.some((s) => selectorMatches(s, namespace, labels)));
}

export class ServerlessProfileAdmission implements MutatingPlugin {
  readonly name = "ServerlessProfile";
  /** The profiles parsed from the ConfigMap at `rv`, so a pod create does not re-parse an unchanged ConfigMap. */
  private parsed?: { rv: string | undefined; profiles: ServerlessProfile[] };

  constructor(private readonly configMaps: ConfigMapSource) {}

  admit(a: AdmissionAttributes): void {
    if (a.operation !== "CREATE" || a.subresource || a.info.group !== "" || a.info.resource !== "pods") return;
    const pod = a.object as Pod;
    if (pod.spec?.nodeName) return;
    const scheduler = pod.spec?.schedulerName;
    if (scheduler && scheduler !== DEFAULT_SCHEDULER) return;
    const profiles = this.profiles();
    if (profiles.length === 0) return;
    const namespace = pod.metadata.namespace || a.namespace;
    const profile = matchingProfile(profiles, namespace, pod.metadata.labels);
    if (!profile) return;
    pod.spec = { ...(pod.spec ?? { containers: [] }), schedulerName: SERVERLESS_SCHEDULER };
    pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [SERVERLESS_PROFILE_LABEL]: profile.name };
  }

  private profiles(): ServerlessProfile[] {
    const cm = this.configMaps(CLOUD_NAMESPACE).find((c) => c.metadata.name === SERVERLESS_PROFILES_CONFIGMAP);
    if (!cm) return [];
    const rv = cm.metadata.resourceVersion;
    if (this.parsed && rv !== undefined && this.parsed.rv === rv) return this.parsed.profiles;
    const profiles = parseServerlessProfiles(cm);
    this.parsed = { rv, profiles };
    return profiles;
  }
}
