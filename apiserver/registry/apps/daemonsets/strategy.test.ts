// DaemonSets through the registry: defaults, validation as upstream, generation and template generation.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DaemonSet, KubeObject } from "../../../../api/index.ts";
import { openBackend, type Backend } from "../../../storage/index.ts";
import { Registry } from "../../registry.ts";
import type { Store } from "../../store.ts";

let backend: Backend;
let registry: Registry;
let store: Store;

beforeAll(async () => {
  backend = await openBackend("memory://");
  registry = new Registry(backend);
  await registry.start();
  store = registry.store("apps", "daemonsets");
});

afterAll(async () => {
  registry.stop();
  await backend.close();
});

function ds(name: string, patch: (d: DaemonSet) => void = () => {}): KubeObject {
  const d: DaemonSet = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace: "default" },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "c", image: "busybox" }] } } },
  };
  patch(d);
  return d;
}

/** The message of a rejected create. */
async function rejected(obj: KubeObject): Promise<string> {
  try {
    await store.create("default", obj);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("create succeeded");
}

describe("DaemonSet strategy", () => {
  it("defaults RollingUpdate with maxUnavailable 1 and maxSurge 0, revisionHistoryLimit 10, and starts generation and template generation at 1", async () => {
    const created = (await store.create("default", ds("a"))) as DaemonSet;
    expect(created.spec?.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    expect(created.spec?.revisionHistoryLimit).toBe(10);
    expect(created.spec?.template.spec?.restartPolicy).toBe("Always");
    expect(created.metadata.generation).toBe(1);
    expect(created.metadata.annotations?.["deprecated.daemonset.template.generation"]).toBe("1");
    expect(created.status).toEqual({ currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 });
  });

  it("bumps the template generation only when the template changes, the generation on any spec change; clients cannot set it", async () => {
    await store.create("default", ds("b"));
    const update = (fn: (d: DaemonSet) => void) =>
      store.update("default", "b", (cur) => {
        const d = cur as DaemonSet;
        fn(d);
        return d;
      });
    let got = (await update((d) => (d.spec!.minReadySeconds = 5))).obj as DaemonSet;
    expect([got.metadata.generation, got.metadata.annotations?.["deprecated.daemonset.template.generation"]]).toEqual([2, "1"]);
    got = (await update((d) => (d.spec!.template.spec!.containers[0]!.image = "busybox:2"))).obj as DaemonSet;
    expect([got.metadata.generation, got.metadata.annotations?.["deprecated.daemonset.template.generation"]]).toEqual([3, "2"]);
    got = (await update((d) => (d.metadata.annotations!["deprecated.daemonset.template.generation"] = "9"))).obj as DaemonSet;
    expect(got.metadata.annotations?.["deprecated.daemonset.template.generation"]).toBe("2");
  });

  it("rejects an empty selector, a selector not matching the template, and a restartPolicy other than Always", async () => {
    expect(await rejected(ds("c", (d) => (d.spec!.selector = {})))).toContain("spec.selector: Invalid value: {}: empty selector is invalid for daemonset");
    expect(await rejected(ds("c", (d) => (d.spec!.selector = { matchLabels: { app: "other" } })))).toContain("spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"c\"}: `selector` does not match template `labels`");
    expect(await rejected(ds("c", (d) => (d.spec!.template.spec!.restartPolicy = "OnFailure")))).toContain('spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"');
    expect(await rejected(ds("c", (d) => delete (d.spec as Partial<DaemonSet["spec"]>)!.selector))).toContain("spec.selector: Required value");
  });

  it("accepts exactly one of maxUnavailable and maxSurge non-zero, neither above 100%", async () => {
    const ru = (maxUnavailable: number | string, maxSurge: number | string) => (d: DaemonSet) => (d.spec!.updateStrategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable, maxSurge } });
    expect(await rejected(ds("d", ru(0, 0)))).toContain("spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0");
    expect(await rejected(ds("d", ru(1, 1)))).toContain("spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero");
    expect(await rejected(ds("d", ru("0%", "120%")))).toContain('spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: "120%": must not be greater than 100%');
    expect(await rejected(ds("d", (d) => (d.spec!.updateStrategy = { type: "Recreate" as "OnDelete" })))).toContain('spec.updateStrategy.type: Unsupported value: "Recreate": supported values: "OnDelete", "RollingUpdate"');
    const surge = (await store.create("default", ds("d", ru(0, "25%")))) as DaemonSet;
    expect(surge.spec?.updateStrategy?.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: "25%" });
    const onDelete = (await store.create("default", ds("e", (d) => (d.spec!.updateStrategy = { type: "OnDelete" })))) as DaemonSet;
    expect(onDelete.spec?.updateStrategy).toEqual({ type: "OnDelete" });
  });

  it("keeps the selector immutable", async () => {
    await store.create("default", ds("f"));
    await expect(
      store.update("default", "f", (cur) => {
        const d = cur as DaemonSet;
        d.spec!.selector = { matchLabels: { app: "f", tier: "x" } };
        d.spec!.template.metadata!.labels!.tier = "x";
        return d;
      }),
    ).rejects.toMatchObject({ code: 422, message: expect.stringContaining("spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"f\",\"tier\":\"x\"}}: field is immutable") });
  });
});
