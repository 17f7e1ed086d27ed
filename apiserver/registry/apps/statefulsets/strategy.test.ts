// StatefulSets and ControllerRevisions through the registry: defaults, validation as upstream,
// the spec fields that may change, status validation, and immutable revision data.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerRevision, KubeObject, StatefulSet } from "../../../../api/index.ts";
import { openBackend, type Backend } from "../../../storage/index.ts";
import { Registry } from "../../registry.ts";
import type { Store } from "../../store.ts";

let backend: Backend;
let registry: Registry;
let sets: Store;
let revisions: Store;

beforeAll(async () => {
  backend = await openBackend("memory://");
  registry = new Registry(backend);
  await registry.start();
  sets = registry.store("apps", "statefulsets");
  revisions = registry.store("apps", "controllerrevisions");
});

afterAll(async () => {
  registry.stop();
  await backend.close();
});

function sts(name: string, patch: (s: StatefulSet) => void = () => {}): KubeObject {
  const s: StatefulSet = {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, namespace: "default" },
    spec: {
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "c", image: "nginx" }] } },
      volumeClaimTemplates: [{ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } }],
    },
  };
  patch(s);
  return s;
}

async function rejected(store: Store, obj: KubeObject): Promise<string> {
  try {
    await store.create("default", obj);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("create succeeded");
}

const FORBIDDEN =
  "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

describe("StatefulSet strategy", () => {
  it("defaults as upstream (MaxUnavailableStatefulSet on), claim templates as PVCs, and starts with generation 1 and a zero status", async () => {
    const created = (await sets.create("default", sts("a"))) as StatefulSet;
    expect(created.spec).toMatchObject({
      replicas: 1,
      podManagementPolicy: "OrderedReady",
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0, maxUnavailable: 1 } },
      revisionHistoryLimit: 10,
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
    });
    expect(created.spec?.template.spec?.restartPolicy).toBe("Always");
    expect(created.spec?.volumeClaimTemplates?.[0]).toMatchObject({ spec: { volumeMode: "Filesystem" }, status: { phase: "Pending" } });
    expect(created.metadata.generation).toBe(1);
    expect(created.status).toEqual({ replicas: 0, availableReplicas: 0 });
    const onDelete = (await sets.create("default", sts("a2", (s) => (s.spec!.updateStrategy = { type: "OnDelete" })))) as StatefulSet;
    expect(onDelete.spec?.updateStrategy).toEqual({ type: "OnDelete" });
  });

  it("rejects what upstream rejects, in upstream's words", async () => {
    expect(await rejected(sets, sts("b", (s) => (s.spec!.selector = { matchLabels: { app: "other" } })))).toContain(
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"b"}: `selector` does not match template `labels`',
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.selector = {})))).toContain("spec.selector: Invalid value: {}: empty selector is invalid for statefulset");
    expect(await rejected(sets, sts("b", (s) => (s.spec!.podManagementPolicy = "Burst" as "Parallel")))).toContain(
      `spec.podManagementPolicy: Invalid value: "Burst": must be 'OrderedReady' or 'Parallel'`,
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.updateStrategy = { type: "Recreate" as "OnDelete" })))).toContain(
      `spec.updateStrategy.type: Invalid value: "Recreate": must be 'RollingUpdate' or 'OnDelete'`,
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.updateStrategy = { type: "OnDelete", rollingUpdate: { partition: 1 } })))).toContain(
      "spec.updateStrategy.rollingUpdate: Invalid value: ",
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.updateStrategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0 } })))).toContain(
      "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: cannot be 0",
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.updateStrategy = { type: "RollingUpdate", rollingUpdate: { partition: -1 } })))).toContain(
      "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.persistentVolumeClaimRetentionPolicy = { whenDeleted: "Keep" as "Retain" })))).toContain(
      'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": supported values: "Retain", "Delete"',
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.template.spec!.restartPolicy = "Never")))).toContain(
      'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    );
    expect(await rejected(sets, sts("b", (s) => (s.spec!.template.spec!.activeDeadlineSeconds = 5)))).toContain(
      "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not Supported",
    );
    expect(await rejected(sets, sts("b.c"))).toContain("metadata.name: Invalid value");
  });

  it("lets replicas, template, updateStrategy, minReadySeconds, revisionHistoryLimit, ordinals and the retention policy change, and nothing else", async () => {
    await sets.create("default", sts("d"));
    const update = (fn: (s: StatefulSet) => void) =>
      sets.update("default", "d", (cur) => {
        const s = cur as StatefulSet;
        fn(s);
        return s;
      });
    const got = (
      await update((s) => {
        s.spec!.replicas = 5;
        s.spec!.template.spec!.containers[0]!.image = "nginx:2";
        s.spec!.updateStrategy = { type: "OnDelete" };
        s.spec!.minReadySeconds = 3;
        s.spec!.revisionHistoryLimit = 2;
        s.spec!.ordinals = { start: 1 };
        s.spec!.persistentVolumeClaimRetentionPolicy = { whenDeleted: "Delete", whenScaled: "Delete" };
      })
    ).obj as StatefulSet;
    expect(got.metadata.generation).toBe(2);
    for (const change of [
      (s: StatefulSet) => (s.spec!.serviceName = "other"),
      (s: StatefulSet) => (s.spec!.podManagementPolicy = "Parallel"),
      (s: StatefulSet) => (s.spec!.volumeClaimTemplates![0]!.spec!.resources = { requests: { storage: "2Gi" } }),
      (s: StatefulSet) => (s.spec!.selector = { matchLabels: { app: "d", x: "y" } }),
    ]) {
      await expect(update(change)).rejects.toMatchObject({ code: 422, message: expect.stringContaining(FORBIDDEN) });
    }
  });

  it("validates status counts on the status subresource", async () => {
    await sets.create("default", sts("e"));
    await expect(
      sets.update(
        "default",
        "e",
        (cur) => {
          const s = cur as StatefulSet;
          s.status = { replicas: 1, readyReplicas: 2 };
          return s;
        },
        { subresource: "status" },
      ),
    ).rejects.toMatchObject({ code: 422, message: expect.stringContaining("status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas") });
  });
});

describe("ControllerRevision strategy", () => {
  const cr = (name: string, data: unknown, revision?: number): KubeObject =>
    ({ apiVersion: "apps/v1", kind: "ControllerRevision", metadata: { name, namespace: "default" }, data, ...(revision === undefined ? {} : { revision }) }) as KubeObject;

  it("requires data, reads an absent revision as 0, rejects a negative one", async () => {
    expect(await rejected(revisions, cr("r1", undefined, 1))).toContain("data: Required value: data is mandatory");
    expect(await rejected(revisions, cr("r1", { a: 1 }, -1))).toContain("revision: Invalid value: -1: must be greater than or equal to 0");
    expect(((await revisions.create("default", cr("r0", { a: 1 }))) as ControllerRevision).revision).toBe(0);
  });

  it("keeps data immutable while the revision number may change", async () => {
    await revisions.create("default", cr("r2", { spec: { template: { a: 1 } } }, 1));
    const renumbered = (await revisions.update("default", "r2", (cur) => ({ ...(cur as ControllerRevision), revision: 4 }))).obj as ControllerRevision;
    expect(renumbered.revision).toBe(4);
    await expect(revisions.update("default", "r2", (cur) => ({ ...(cur as ControllerRevision), data: { spec: { template: { a: 2 } } } }))).rejects.toMatchObject({
      code: 422,
      message: expect.stringContaining("field is immutable"),
    });
  });
});
