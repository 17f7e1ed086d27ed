// End to end: ResourceQuota and LimitRange on `kubelab up`, driven by the real kubectl — a quota of
// 3 pods refuses the 4th with upstream's message and deleting one frees it (the quota controller
// recounts); `kubectl create quota`, `get quota`, `describe quota`; a LimitRange default applies to
// a pod that declares no resources.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll } from "./harness/poll.ts";

let k: Kubelab;

beforeAll(async () => {
  k = await startKubelab();
}, 120_000);

afterAll(async () => {
  await k?.stop({ clean: true });
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const podManifest = (name: string, ns: string) =>
  JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: ns }, spec: { containers: [{ name: "app", image: "busybox", command: ["sleep", "3600"] }] } });

describe("ResourceQuota", () => {
  const ns = "quota-e2e";

  it("kubectl create quota makes a quota whose usage the controller fills in", async () => {
    await ok(["create", "namespace", ns]);
    expect(await ok(["create", "quota", "q", "--hard=pods=3", "-n", ns])).toBe("resourcequota/q created\n");
    await poll("the quota controller to compute status.used", async () => (await ok(["get", "quota", "q", "-n", ns, "-o", "jsonpath={.status.used.pods}/{.status.hard.pods}"])) === "0/3", 30_000, 100);
    const describe = await ok(["describe", "quota", "q", "-n", ns]);
    expect(describe).toMatch(/^Name:\s+q$/m);
    expect(describe).toMatch(/^Namespace:\s+quota-e2e$/m);
    expect(describe).toMatch(/^Resource\s+Used\s+Hard$/m);
    expect(describe).toMatch(/^pods\s+0\s+3$/m);
  });

  it("refuses the 4th pod with upstream's message, and admits it once one is deleted", async () => {
    for (const n of ["p1", "p2", "p3"]) await ok(["create", "-f", "-"], podManifest(n, ns));
    const fourth = await k.kubectl(["create", "-f", "-"], { input: podManifest("p4", ns) });
    expect(fourth.code).not.toBe(0);
    expect(fourth.stderr.trim()).toBe('Error from server (Forbidden): error when creating "STDIN": pods "p4" is forbidden: exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3');
    const run = await k.kubectl(["run", "p5", "--image=busybox", "-n", ns]);
    expect(run.stderr.trim()).toBe('Error from server (Forbidden): pods "p5" is forbidden: exceeded quota: q, requested: pods=1, used: pods=3, limited: pods=3');

    const table = await ok(["get", "quota", "-n", ns]);
    expect(table.split("\n")[0]).toMatch(/^NAME\s+AGE\s+REQUEST\s+LIMIT$/);
    expect(table).toMatch(/^q\s+\S+\s+pods: 3\/3\s*$/m);
    expect(await ok(["describe", "quota", "q", "-n", ns])).toMatch(/^pods\s+3\s+3$/m);

    await ok(["delete", "pod", "p1", "-n", ns, "--wait=false"]);
    // The controller recounts on the delete: the slot comes back within moments.
    await poll("the freed slot to admit p4", async () => (await k.kubectl(["create", "-f", "-"], { input: podManifest("p4", ns) })).code === 0, 30_000, 200);
    expect(await ok(["get", "quota", "q", "-n", ns, "-o", "jsonpath={.status.used.pods}"])).toBe("3");
  });

  it("counts objects with count/<resource> and rejects invalid quotas with a 422", async () => {
    // The namespace starts with one ConfigMap, kube-root-ca.crt (the root-ca-cert-publisher's): it counts, as upstream.
    await poll("kube-root-ca.crt in the namespace", async () => (await k.kubectl(["get", "configmap", "kube-root-ca.crt", "-n", ns])).code === 0, 30_000, 100);
    await ok(["create", "quota", "cm", "--hard=count/configmaps=3", "-n", ns]);
    await poll("the configmap quota to be computed", async () => (JSON.parse(await ok(["get", "quota", "cm", "-n", ns, "-o", "json"])) as { status?: { used?: Record<string, string> } }).status?.used?.["count/configmaps"] === "1", 30_000, 100);
    await ok(["create", "configmap", "a", "-n", ns]);
    await ok(["create", "configmap", "b", "-n", ns]);
    const third = await k.kubectl(["create", "configmap", "c", "-n", ns]);
    expect(third.stderr.trim()).toBe('error: failed to create configmap: configmaps "c" is forbidden: exceeded quota: cm, requested: count/configmaps=1, used: count/configmaps=3, limited: count/configmaps=3');
    const bad = await k.kubectl(["create", "quota", "bad", "--hard=pods=-1", "-n", ns]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0');
  });
});

describe("LimitRange", () => {
  const ns = "limits-e2e";

  it("gives a pod without resources the range's defaults, and refuses one under the minimum", async () => {
    await ok(["create", "namespace", ns]);
    const lr = {
      apiVersion: "v1",
      kind: "LimitRange",
      metadata: { name: "defaults", namespace: ns },
      spec: { limits: [{ type: "Container", default: { cpu: "500m", memory: "256Mi" }, defaultRequest: { cpu: "100m", memory: "128Mi" }, min: { cpu: "50m" } }] },
    };
    expect(await ok(["create", "-f", "-"], JSON.stringify(lr))).toBe("limitrange/defaults created\n");
    const table = await ok(["get", "limits", "-n", ns]);
    expect(table.split("\n")[0]).toMatch(/^NAME\s+CREATED AT$/);
    expect(table).toMatch(/^defaults\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s*$/m);

    await ok(["create", "-f", "-"], podManifest("plain", ns));
    const resources = JSON.parse(await ok(["get", "pod", "plain", "-n", ns, "-o", "jsonpath={.spec.containers[0].resources}"])) as unknown;
    expect(resources).toEqual({ limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "100m", memory: "128Mi" } });
    expect(await ok(["get", "pod", "plain", "-n", ns, "-o", "jsonpath={.status.qosClass}"])).toBe("Burstable");

    const small = JSON.parse(podManifest("small", ns)) as { spec: { containers: { resources?: unknown }[] } };
    small.spec.containers[0].resources = { requests: { cpu: "10m" } };
    const r = await k.kubectl(["create", "-f", "-"], { input: JSON.stringify(small) });
    expect(r.stderr.trim()).toBe('Error from server (Forbidden): error when creating "STDIN": pods "small" is forbidden: minimum cpu usage per Container is 50m, but request is 10m');
  });
});
