// The PodIdentity admission plugin, kubelab's stand-in for EKS's amazon-eks-pod-identity-webhook
// (the mutating webhook behind IAM Roles for Service Accounts): a new pod whose ServiceAccount carries
// `eks.amazonaws.com/role-arn` gets, in every container and init container (but those named by the
// pod's `eks.amazonaws.com/skip-containers`), the environment AWS SDKs read — AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE (AWS_STS_REGIONAL_ENDPOINTS=regional with the SA's
// `eks.amazonaws.com/sts-regional-endpoints: "true"`) — and a projected ServiceAccount token volume
// `aws-iam-token` for the audience sts.amazonaws.com (or the SA's `eks.amazonaws.com/audience`),
// 86400 s (or `eks.amazonaws.com/token-expiration`, at least 3600), mounted read-only at
// /var/run/secrets/eks.amazonaws.com/serviceaccount. Variables and mounts a container already has
// are left as they are, as the webhook leaves them. It runs where MutatingAdmissionWebhook runs:
// after the ServiceAccount plugin, which has set spec.serviceAccountName.

import type { Container, EnvVar, Pod, ServiceAccount, Volume } from "../../api/index.ts";
import type { AdmissionAttributes, MutatingPlugin } from "./index.ts";

export const ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn";
export const AUDIENCE_ANNOTATION = "eks.amazonaws.com/audience";
export const TOKEN_EXPIRATION_ANNOTATION = "eks.amazonaws.com/token-expiration";
export const REGIONAL_STS_ANNOTATION = "eks.amazonaws.com/sts-regional-endpoints";
export const SKIP_CONTAINERS_ANNOTATION = "eks.amazonaws.com/skip-containers";
export const TOKEN_VOLUME = "aws-iam-token";
export const TOKEN_MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
export const DEFAULT_AUDIENCE = "sts.amazonaws.com";
export const DEFAULT_TOKEN_EXPIRATION = 86400;
const MIN_TOKEN_EXPIRATION = 3600;

/** Where the plugin reads ServiceAccounts (the apiserver's watch cache). */
export type ServiceAccountSource = (namespace: string, name: string) => Readonly<ServiceAccount> | undefined;

export class PodIdentityAdmission implements MutatingPlugin {
  readonly name = "PodIdentity";

  constructor(private readonly serviceAccounts: ServiceAccountSource) {}

  admit(a: AdmissionAttributes): void {
    if (a.operation !== "CREATE" || a.subresource || a.info.group !== "" || a.info.resource !== "pods") return;
    const pod = a.object as Pod;
    if (!pod.spec) return;
    const spec = pod.spec;
    const sa = this.serviceAccounts(a.namespace, spec.serviceAccountName || "default");
    const ann = sa?.metadata.annotations ?? {};
    const roleArn = ann[ROLE_ARN_ANNOTATION];
    if (!roleArn) return;
    const audience = ann[AUDIENCE_ANNOTATION] || DEFAULT_AUDIENCE;
    const requested = Number(ann[TOKEN_EXPIRATION_ANNOTATION]);
    const expirationSeconds = Number.isInteger(requested) && requested >= MIN_TOKEN_EXPIRATION ? requested : DEFAULT_TOKEN_EXPIRATION;
    const skip = new Set((pod.metadata.annotations?.[SKIP_CONTAINERS_ANNOTATION] ?? "").split(",").map((s) => s.trim()).filter(Boolean));
    const env: EnvVar[] = [
      { name: "AWS_ROLE_ARN", value: roleArn },
      { name: "AWS_WEB_IDENTITY_TOKEN_FILE", value: `${TOKEN_MOUNT_PATH}/token` },
      ...(ann[REGIONAL_STS_ANNOTATION] === "true" ? [{ name: "AWS_STS_REGIONAL_ENDPOINTS", value: "regional" }] : []),
    ];
    let mounted = false;
    const mutate = (c: Container) => {
      if (skip.has(c.name)) return;
      c.env ??= [];
      for (const e of env) if (!c.env.some((x) => x.name === e.name)) c.env.push({ ...e });
      c.volumeMounts ??= [];
      if (!c.volumeMounts.some((m) => m.mountPath === TOKEN_MOUNT_PATH || m.name === TOKEN_VOLUME)) c.volumeMounts.push({ name: TOKEN_VOLUME, readOnly: true, mountPath: TOKEN_MOUNT_PATH });
      mounted = true;
    };
    for (const c of spec.initContainers ?? []) mutate(c);
    for (const c of spec.containers ?? []) mutate(c);
    if (!mounted || (spec.volumes ?? []).some((v) => v.name === TOKEN_VOLUME)) return;
    const volume: Volume = { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience, expirationSeconds, path: "token" } }] } };
    (spec.volumes ??= []).push(volume);
  }
}
