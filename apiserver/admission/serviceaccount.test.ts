// The ServiceAccount admission plugin: the default account, the lookup that waits for it, and the
// kube-api-access projected volume mounted in every container.

import { describe, expect, it } from "vitest";
import { RESOURCES, type Pod, type ServiceAccount } from "../../api/index.ts";
import type { ApiError } from "../errors.ts";
import type { AdmissionAttributes } from "./index.ts";
import { DEFAULT_API_TOKEN_MOUNT_PATH, ServiceAccountAdmission, generateName, tokenVolumeSource, type ServiceAccountSource } from "./serviceaccount.ts";

const pods = RESOURCES.find((r) => r.group === "" && r.resource === "pods")!;

const sa = (name: string, extra: Partial<ServiceAccount> = {}): ServiceAccount => ({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace: "ns", uid: `${name}-uid` }, ...extra });

function pod(spec: Partial<NonNullable<Pod["spec"]>> = {}, annotations?: Record<string, string>): Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "ns", ...(annotations ? { annotations } : {}) }, spec: { containers: [{ name: "c", image: "busybox" }], ...spec } } as Pod;
}

function create(obj: Pod): AdmissionAttributes {
  return { operation: "CREATE", info: pods, namespace: "ns", name: obj.metadata.name ?? "", object: obj, dryRun: false };
}

/** A source whose cache holds `cached` and whose store gets `live` after `liveAfter` attempts. */
function source(cached: ServiceAccount[], live: ServiceAccount[] = [], liveAfter = 0): ServiceAccountSource & { attempts: number; slept: number[] } {
  const s = {
    attempts: 0,
    slept: [] as number[],
    cached: (ns: string, name: string) => cached.find((x) => x.metadata.namespace === ns && x.metadata.name === name),
    live: async (ns: string, name: string) => (s.attempts++ >= liveAfter ? live.find((x) => x.metadata.namespace === ns && x.metadata.name === name) : undefined),
    sleep: async (ms: number) => void s.slept.push(ms),
  };
  return s;
}

const fixedName = () => "kube-api-access-abcde";

async function refusal(p: Promise<void>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as ApiError).message;
  }
}

describe("ServiceAccount admission", () => {
  it("a pod that names no account runs as default and gets the kube-api-access volume, mounted read-only in every container", async () => {
    const plugin = new ServiceAccountAdmission(source([sa("default")]), { generateName: fixedName });
    const p = pod({ initContainers: [{ name: "init", image: "busybox" }] });
    await plugin.admit(create(p));
    await plugin.validate(create(p));
    expect(p.spec!.serviceAccountName).toBe("default");
    expect(p.spec!.volumes).toEqual([{ name: "kube-api-access-abcde", projected: tokenVolumeSource() }]);
    const mount = { name: "kube-api-access-abcde", readOnly: true, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH };
    expect(p.spec!.containers[0]!.volumeMounts).toEqual([mount]);
    expect(p.spec!.initContainers![0]!.volumeMounts).toEqual([mount]);
    expect(tokenVolumeSource()).toEqual({
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: "token" } },
        { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
        { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
      ],
    });
  });

  it("generated volume names take five characters of utilrand's alphabet", () => {
    expect(generateName("kube-api-access-")).toMatch(/^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });

  it("automountServiceAccountToken false on the pod, or on the account when the pod does not say, mounts nothing", async () => {
    const off = new ServiceAccountAdmission(source([sa("default"), sa("quiet", { automountServiceAccountToken: false })]));
    const a = pod({ automountServiceAccountToken: false });
    await off.admit(create(a));
    expect(a.spec!.volumes).toBeUndefined();
    const b = pod({ serviceAccountName: "quiet" });
    await off.admit(create(b));
    expect(b.spec!.volumes).toBeUndefined();
    // The pod's preference wins over the account's.
    const c = pod({ serviceAccountName: "quiet", automountServiceAccountToken: true });
    await off.admit(create(c));
    expect(c.spec!.volumes?.map((v) => v.name)).toEqual([expect.stringMatching(/^kube-api-access-/)]);
  });

  it("a container that already mounts something at the token path keeps it; only the others get the volume", async () => {
    const plugin = new ServiceAccountAdmission(source([sa("default")]), { generateName: fixedName });
    const p = pod({
      containers: [
        { name: "own", image: "busybox", volumeMounts: [{ name: "mine", mountPath: DEFAULT_API_TOKEN_MOUNT_PATH }] },
        { name: "plain", image: "busybox" },
      ],
      volumes: [{ name: "mine", emptyDir: {} }],
    });
    await plugin.admit(create(p));
    expect(p.spec!.containers[0]!.volumeMounts).toEqual([{ name: "mine", mountPath: DEFAULT_API_TOKEN_MOUNT_PATH }]);
    expect(p.spec!.containers[1]!.volumeMounts).toEqual([{ name: "kube-api-access-abcde", readOnly: true, mountPath: DEFAULT_API_TOKEN_MOUNT_PATH }]);
    expect(p.spec!.volumes!.map((v) => v.name)).toEqual(["mine", "kube-api-access-abcde"]);
  });

  it("a missing default account is waited for (ten live lookups), so pods of a brand-new namespace are admitted", async () => {
    const s = source([], [sa("default")], 3);
    await new ServiceAccountAdmission(s).admit(create(pod()));
    expect(s.attempts).toBe(4);
    expect(s.slept).toHaveLength(3);
    expect(s.slept.every((ms) => ms >= 100 && ms < 200)).toBe(true);
  });

  it("an account that does not exist refuses the pod with upstream's message; a named one is looked up once", async () => {
    const none = source([]);
    expect(await refusal(new ServiceAccountAdmission(none).admit(create(pod())))).toBe('pods "p" is forbidden: error looking up service account ns/default: serviceaccount "default" not found');
    expect(none.attempts).toBe(10);
    const named = source([]);
    expect(await refusal(new ServiceAccountAdmission(named).admit(create(pod({ serviceAccountName: "robot" }))))).toBe(
      'pods "p" is forbidden: error looking up service account ns/robot: serviceaccount "robot" not found',
    );
    expect(named.attempts).toBe(1);
  });

  it("the account's imagePullSecrets are copied to a pod that has none", async () => {
    const plugin = new ServiceAccountAdmission(source([sa("default", { imagePullSecrets: [{ name: "regcred" }] })]));
    const p = pod();
    await plugin.admit(create(p));
    expect(p.spec!.imagePullSecrets).toEqual([{ name: "regcred" }]);
  });

  it("mirror pods are not mutated, and may not reference accounts, secrets or token projections", async () => {
    const plugin = new ServiceAccountAdmission(source([sa("default")]));
    const mirror = pod({}, { "kubernetes.io/config.mirror": "hash" });
    await plugin.admit(create(mirror));
    await plugin.validate(create(mirror));
    expect(mirror.spec!.serviceAccountName).toBeUndefined();
    expect(mirror.spec!.volumes).toBeUndefined();
    expect(await refusal(plugin.validate(create(pod({ serviceAccountName: "default" }, { "kubernetes.io/config.mirror": "h" }))))).toBe('pods "p" is forbidden: a mirror pod may not reference service accounts');
    expect(await refusal(plugin.validate(create(pod({ volumes: [{ name: "s", secret: { secretName: "x" } }] }, { "kubernetes.io/config.mirror": "h" }))))).toBe('pods "p" is forbidden: a mirror pod may not reference secrets');
  });

  it("an account with kubernetes.io/enforce-mountable-secrets limits its pods to the secrets it lists", async () => {
    const strict = sa("default", { metadata: { name: "default", namespace: "ns", uid: "u", annotations: { "kubernetes.io/enforce-mountable-secrets": "true" } }, secrets: [{ name: "ok" }] });
    const plugin = new ServiceAccountAdmission(source([strict]));
    await plugin.validate(create(pod({ serviceAccountName: "default", volumes: [{ name: "s", secret: { secretName: "ok" } }] })));
    expect(await refusal(plugin.validate(create(pod({ serviceAccountName: "default", volumes: [{ name: "s", secret: { secretName: "other" } }] }))))).toBe(
      'pods "p" is forbidden: volume with secret.secretName="other" is not allowed because service account default does not reference that secret',
    );
  });

  it("updates are left alone (the pod's account cannot change: validation keeps the spec)", async () => {
    const plugin = new ServiceAccountAdmission(source([]));
    const p = pod();
    await plugin.admit({ ...create(p), operation: "UPDATE", oldObject: pod() });
    expect(p.spec!.serviceAccountName).toBeUndefined();
  });
});
