// ServerlessProfile admission: pods a profile selects (namespace, labels ⊇ selector) that would go to
// the default scheduler get the serverless scheduler and the profile annotation; everything else —
// other namespaces, missing labels, another scheduler, a bound pod, updates, no ConfigMap — is left alone.

import { describe, expect, it } from "vitest";
import { findResource, type ConfigMap, type Pod, type ResourceInfo } from "../../api/index.ts";
import { Registry } from "../registry/registry.ts";
import { openBackend } from "../storage/index.ts";
import type { ServerlessProfile } from "../../controllers/cloud/types.ts";
import type { AdmissionAttributes } from "./index.ts";
import { matchingProfile, parseServerlessProfiles, ServerlessProfileAdmission } from "./serverlessprofile.ts";

const podsInfo = findResource("", "v1", "pods") as ResourceInfo;
const ANNOTATION = "kubelab.io/serverless-profile";

const PROFILES: ServerlessProfile[] = [
  { name: "batch", zones: ["local-1a"], selectors: [{ namespace: "jobs", labels: { tier: "batch" } }] },
  { name: "serverless", zones: ["local-1a", "local-1b"], selectors: [{ namespace: "serverless", labels: {} }, { namespace: "jobs", labels: {} }] },
];

function profilesConfigMap(profiles: unknown, opts: { name?: string; namespace?: string; rv?: string } = {}): ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: opts.name ?? "kubelab-serverless-profiles", namespace: opts.namespace ?? "kube-system", resourceVersion: opts.rv ?? "1" },
    data: { profiles: typeof profiles === "string" ? profiles : JSON.stringify(profiles) },
  };
}

function pod(namespace: string, labels: Record<string, string> = {}, spec: Partial<NonNullable<Pod["spec"]>> = {}): Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace, labels },
    spec: { schedulerName: "default-scheduler", containers: [{ name: "c", image: "busybox" }], ...spec },
  };
}

function admit(cms: ConfigMap[], obj: Pod, operation: "CREATE" | "UPDATE" = "CREATE", subresource?: string): Pod {
  const plugin = new ServerlessProfileAdmission((ns) => cms.filter((c) => c.metadata.namespace === ns));
  const a: AdmissionAttributes = { operation, info: podsInfo, namespace: obj.metadata.namespace ?? "", name: "p", object: obj, dryRun: false, subresource };
  plugin.admit(a);
  return a.object as Pod;
}

describe("ServerlessProfile admission", () => {
  const cms = [profilesConfigMap(PROFILES)];

  it("hands a pod of a selected namespace to the serverless scheduler and names its profile", () => {
    const got = admit(cms, pod("serverless"));
    expect(got.spec?.schedulerName).toBe("kubelab-serverless-scheduler");
    expect(got.metadata.annotations).toEqual({ [ANNOTATION]: "serverless" });
  });

  it("takes pods whose schedulerName is unset, and keeps the pod's other annotations", () => {
    const p = pod("serverless", {}, { schedulerName: undefined });
    p.metadata.annotations = { keep: "me" };
    const got = admit(cms, p);
    expect(got.spec?.schedulerName).toBe("kubelab-serverless-scheduler");
    expect(got.metadata.annotations).toEqual({ keep: "me", [ANNOTATION]: "serverless" });
  });

  it("picks the first matching profile in order, and requires every selector label", () => {
    expect(admit(cms, pod("jobs", { tier: "batch", app: "x" })).metadata.annotations?.[ANNOTATION]).toBe("batch");
    // tier=web does not satisfy the batch selector; the serverless profile's second selector takes it.
    expect(admit(cms, pod("jobs", { tier: "web" })).metadata.annotations?.[ANNOTATION]).toBe("serverless");
    expect(matchingProfile(PROFILES, "jobs", undefined)?.name).toBe("serverless");
  });

  it("leaves alone pods of other namespaces, pods for another scheduler, and pods already bound", () => {
    for (const p of [pod("default"), pod("serverless", {}, { schedulerName: "my-scheduler" }), pod("serverless", {}, { nodeName: "n1" })]) {
      const before = structuredClone(p);
      expect(admit(cms, p)).toEqual(before);
    }
  });

  it("does nothing on update, on subresources, or without the profiles ConfigMap", () => {
    expect(admit(cms, pod("serverless"), "UPDATE").spec?.schedulerName).toBe("default-scheduler");
    expect(admit(cms, pod("serverless"), "CREATE", "status").spec?.schedulerName).toBe("default-scheduler");
    expect(admit([], pod("serverless")).spec?.schedulerName).toBe("default-scheduler");
    // Same name in another namespace, or another name in kube-system, is not the profiles ConfigMap.
    expect(admit([profilesConfigMap(PROFILES, { namespace: "default" }), profilesConfigMap(PROFILES, { name: "other" })], pod("serverless")).spec?.schedulerName).toBe(
      "default-scheduler",
    );
  });

  it("treats an empty or unreadable profile list as no profiles", () => {
    expect(admit([profilesConfigMap([])], pod("serverless")).spec?.schedulerName).toBe("default-scheduler");
    expect(admit([profilesConfigMap("{not json")], pod("serverless")).spec?.schedulerName).toBe("default-scheduler");
    expect(parseServerlessProfiles(profilesConfigMap({ name: "x" }))).toEqual([]);
  });

  it("sees a changed ConfigMap (new resourceVersion) on the next pod", () => {
    const store = [profilesConfigMap([], { rv: "1" })];
    const plugin = new ServerlessProfileAdmission(() => store);
    const run = (): Pod => {
      const a: AdmissionAttributes = { operation: "CREATE", info: podsInfo, namespace: "serverless", name: "p", object: pod("serverless"), dryRun: false };
      plugin.admit(a);
      return a.object as Pod;
    };
    expect(run().spec?.schedulerName).toBe("default-scheduler");
    store[0] = profilesConfigMap(PROFILES, { rv: "2" });
    expect(run().spec?.schedulerName).toBe("kubelab-serverless-scheduler");
  });
});

describe("ServerlessProfile in the apiserver's admission chain", () => {
  it("reads the profiles ConfigMap from the watch cache and mutates pods created through the pods store", async () => {
    const backend = await openBackend("memory://");
    const registry = new Registry(backend);
    await registry.start();
    try {
      for (const name of ["serverless", "other"]) await registry.store("", "namespaces").create("", { apiVersion: "v1", kind: "Namespace", metadata: { name } });
      const create = async (ns: string, name: string): Promise<Pod> =>
        (await registry.store("", "pods").create(ns, { apiVersion: "v1", kind: "Pod", metadata: { name }, spec: { containers: [{ name: "c", image: "busybox" }] } })) as Pod;
      expect((await create("serverless", "before")).spec?.schedulerName).toBe("default-scheduler");
      await registry.store("", "configmaps").create("kube-system", profilesConfigMap(PROFILES, { rv: "" }));
      await registry.cache.waitUntilFresh(await backend.currentRevision());
      const got = await create("serverless", "after");
      expect(got.spec?.schedulerName).toBe("kubelab-serverless-scheduler");
      expect(got.metadata.annotations?.[ANNOTATION]).toBe("serverless");
      expect((await create("other", "elsewhere")).spec?.schedulerName).toBe("default-scheduler");
    } finally {
      registry.stop();
      await backend.close?.();
    }
  });
});
