// The Store's optimistic-concurrency loop (guaranteedUpdate) on the durable embedded store, where
// concurrent writers really do lose compare-and-swaps to each other.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { KubeObject } from "../../api/index.ts";
import { openBackend, type Backend } from "../storage/index.ts";
import { Registry } from "./registry.ts";

let dir = "";
let backend: Backend | undefined;
let registry: Registry | undefined;

afterEach(async () => {
  registry?.stop();
  await backend?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<Registry> {
  dir = mkdtempSync(join(tmpdir(), "kubelab-store-"));
  backend = await openBackend(`file://${dir}`);
  registry = new Registry(backend);
  await registry.start();
  return registry;
}

type ConfigMap = KubeObject & { data?: Record<string, string> };

describe("Store.update", () => {
  it("retries a lost race for a tryUpdate that carries the resourceVersion it read (a patch), so every writer succeeds", async () => {
    const cms = (await start()).store("", "configmaps");
    await cms.create("default", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "racy" }, data: {} } as ConfigMap);
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        cms.update("default", "racy", (cur) => {
          const c = cur as ConfigMap;
          return { ...c, data: { ...c.data, [`k${i}`]: String(i) } } as ConfigMap;
        }),
      ),
    );
    const got = (await cms.get("default", "racy")) as ConfigMap;
    expect(Object.keys(got.data ?? {}).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`).sort());
  });

  it("still answers 409 to a resourceVersion the caller pinned, once the object has moved", async () => {
    const cms = (await start()).store("", "configmaps");
    const c = (await cms.create("default", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "pinned" }, data: { a: "1" } } as ConfigMap)) as ConfigMap;
    await cms.update("default", "pinned", (cur) => ({ ...(cur as ConfigMap), data: { a: "2" } }) as ConfigMap);
    await expect(cms.update("default", "pinned", () => ({ ...c, data: { a: "3" } }) as ConfigMap)).rejects.toMatchObject({ code: 409 });
    expect(((await cms.get("default", "pinned")) as ConfigMap).data).toEqual({ a: "2" });
  });
});
