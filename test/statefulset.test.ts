// StatefulSets end to end on `kubelab up` (simulated kubelets in three zones) with the real kubectl:
// a 3-replica set comes up in order (each pod Running and Ready before the next is created, seen on
// a pod watch), `kubectl scale` takes it down in reverse order one pod at a time, a rolling update
// with partition 2 replaces only web-2, `kubectl rollout status/history/undo` work, and claim
// templates give one PVC per ordinal, kept or deleted on scale-down and set deletion per
// persistentVolumeClaimRetentionPolicy (the claims stay unbound: no PV provisioning yet).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerRevision, StatefulSet } from "../api/apps/v1.ts";
import type { Namespace, PersistentVolumeClaim, Pod } from "../api/core/v1.ts";
import { RestClient, type WatchEvent } from "../client/index.ts";
import { startKubelab, type Kubelab } from "./harness/kubelab.ts";
import { poll as pollEvery } from "./harness/poll.ts";

const poll = <T,>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 240_000): Promise<T> => pollEvery(what, fn, timeoutMs, 300);

let k: Kubelab;
let client: RestClient;

beforeAll(async () => {
  k = await startKubelab({ nodes: true });
  client = RestClient.fromKubeconfig(k.kubeconfig);
}, 120_000);

afterAll(async () => {
  client?.close();
  await k?.stop({ clean: true });
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await k.kubectl(args, { input, timeoutMs: 250_000 });
  expect(r.code, `kubectl ${args.join(" ")} failed (${r.code}):\n${r.stderr}${r.stdout}`).toBe(0);
  return r.stdout;
}

const pods = () => client.resource<Pod>("", "pods");
const sets = () => client.resource<StatefulSet>("apps", "statefulsets");
const claims = () => client.resource<PersistentVolumeClaim>("", "persistentvolumeclaims");
const revisions = () => client.resource<ControllerRevision>("apps", "controllerrevisions");
const isReady = (p: Readonly<Pod>): boolean => p.status?.phase === "Running" && (p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false);

/** Every pod event of a namespace from now on, with the namespace's pods as they stood after it. */
interface Seen {
  ev: WatchEvent<Pod>;
  after: Map<string, Pod>;
}

async function watchPods(ns: string): Promise<{ seen: Seen[]; stop(): Promise<void> }> {
  const list = await pods().list(ns);
  const all = new Map<string, Pod>(list.items.map((p) => [p.metadata.name!, p]));
  const seen: Seen[] = [];
  const ac = new AbortController();
  const loop = (async () => {
    let rv = list.metadata.resourceVersion ?? "";
    while (!ac.signal.aborted) {
      try {
        for await (const ev of pods().watch(ns, { resourceVersion: rv, allowWatchBookmarks: true }, ac.signal)) {
          rv = ev.object.metadata.resourceVersion ?? rv;
          if (ev.type === "BOOKMARK") continue;
          if (ev.type === "ERROR") throw new Error(`watch error: ${JSON.stringify(ev.object)}`);
          if (ev.type === "DELETED") all.delete(ev.object.metadata.name!);
          else all.set(ev.object.metadata.name!, ev.object);
          seen.push({ ev, after: new Map(all) });
        }
      } catch (e) {
        if (ac.signal.aborted) break;
        throw e;
      }
    }
  })();
  return {
    seen,
    async stop() {
      ac.abort();
      await loop.catch(() => undefined);
    },
  };
}

const image = (p: Readonly<Pod> | undefined) => p?.spec?.containers[0]?.image;

const WEB = {
  apiVersion: "apps/v1",
  kind: "StatefulSet",
  metadata: { name: "web" },
  spec: {
    replicas: 3,
    serviceName: "nginx",
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: { containers: [{ name: "web", image: "nginx:1.25", ports: [{ containerPort: 80, name: "http" }] }] },
    },
  },
};

// Generous timeouts: the suite shares two cores with whatever else runs; nothing here measures speed.
describe("StatefulSet web (OrderedReady)", { timeout: 300_000 }, () => {
  const ns = "sts-web";

  beforeAll(async () => {
    await client.resource<Namespace>("", "namespaces").create("", { metadata: { name: ns } });
  });

  it("comes up in order: web-N is created only once web-0..web-N-1 are Running and Ready", async () => {
    const w = await watchPods(ns);
    await ok(["apply", "-n", ns, "-f", "-"], JSON.stringify(WEB));
    await ok(["rollout", "status", "-n", ns, "statefulset/web", "--timeout=240s"]);
    await w.stop();
    for (const n of [1, 2]) {
      const added = w.seen.find((s) => s.ev.type === "ADDED" && s.ev.object.metadata.name === `web-${n}`);
      expect(added, `web-${n} was never created`).toBeDefined();
      for (let prev = 0; prev < n; prev++) {
        const p = added!.after.get(`web-${prev}`);
        expect(p && isReady(p), `web-${prev} was not Running and Ready when web-${n} was created`).toBe(true);
      }
    }
    const web1 = await pods().get(ns, "web-1");
    expect(web1.spec?.hostname).toBe("web-1");
    expect(web1.spec?.subdomain).toBe("nginx");
    expect(web1.metadata.labels).toMatchObject({ app: "web", "statefulset.kubernetes.io/pod-name": "web-1", "apps.kubernetes.io/pod-index": "1" });
    const sts = await sets().get(ns, "web");
    expect(web1.metadata.labels?.["controller-revision-hash"]).toBe(sts.status?.updateRevision);
    expect(sts.status).toMatchObject({ replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, availableReplicas: 3, observedGeneration: 1 });
    const table = await ok(["get", "sts", "-n", ns, "-o", "wide"]);
    expect(table).toMatch(/^NAME\s+READY\s+AGE\s+CONTAINERS\s+IMAGES\n/);
    expect(table).toMatch(/^web\s+3\/3\s+\S+\s+web\s+nginx:1\.25$/m);
  });

  it("is defaulted as upstream and refuses changes to the immutable parts of its spec and to a revision's data", async () => {
    const sts = JSON.parse(await ok(["get", "sts/web", "-n", ns, "-o", "json"])) as StatefulSet;
    expect(sts.spec).toMatchObject({
      podManagementPolicy: "OrderedReady",
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0, maxUnavailable: 1 } },
      revisionHistoryLimit: 10,
      persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
    });
    const r = await k.kubectl(["patch", "sts/web", "-n", ns, "-p", JSON.stringify({ spec: { serviceName: "other" } })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `The StatefulSet "web" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden`,
    );
    const bad = { ...WEB, metadata: { name: "bad" }, spec: { ...WEB.spec, selector: { matchLabels: { app: "other" } } } };
    const c = await k.kubectl(["apply", "-n", ns, "-f", "-"], { input: JSON.stringify(bad) });
    expect(c.code).toBe(1);
    expect(c.stderr).toContain("spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`");
    const rev = sts.status?.updateRevision ?? "";
    const p = await k.kubectl(["patch", "controllerrevision", rev, "-n", ns, "--type=merge", "-p", JSON.stringify({ data: { extra: 1 } })]);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain(`The ControllerRevision "${rev}" is invalid: data: Invalid value:`);
    expect(p.stderr).toContain("field is immutable");
  });

  it("kubectl scale takes it down in reverse order, starting a pod's deletion only once the next one up is gone", async () => {
    const w = await watchPods(ns);
    await ok(["scale", "-n", ns, "sts/web", "--replicas=1"]);
    await poll("web scaled to 1", async () => (await pods().list(ns)).items.length === 1 && (await sets().get(ns, "web")).status?.replicas === 1);
    await w.stop();
    const deletionStarted = (name: string) => w.seen.findIndex((s) => s.ev.object.metadata.name === name && (s.ev.type === "DELETED" || !!s.ev.object.metadata.deletionTimestamp));
    const i2 = deletionStarted("web-2");
    const i1 = deletionStarted("web-1");
    expect(i2).toBeGreaterThanOrEqual(0);
    expect(i1).toBeGreaterThan(i2);
    expect(w.seen[i1]!.after.has("web-2"), "web-1 began terminating while web-2 still existed").toBe(false);
    expect(w.seen.some((s) => s.ev.object.metadata.name === "web-0" && (s.ev.type === "DELETED" || s.ev.object.metadata.deletionTimestamp))).toBe(false);
    expect(JSON.parse(await ok(["get", "sts/web", "-n", ns, "--subresource=scale", "-o", "json"])).spec.replicas).toBe(1);
    await ok(["scale", "-n", ns, "sts/web", "--replicas=3"]);
    await ok(["rollout", "status", "-n", ns, "statefulset/web", "--timeout=240s"]);
  });

  it("a rolling update with partition 2 replaces only web-2", async () => {
    const before = new Map((await pods().list(ns)).items.map((p) => [p.metadata.name!, p.metadata.uid]));
    const w = await watchPods(ns);
    await ok(["patch", "-n", ns, "sts/web", "-p", JSON.stringify({ spec: { updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 2 } } } })]);
    await ok(["set", "image", "-n", ns, "sts/web", "web=nginx:1.26"]);
    const out = await ok(["rollout", "status", "-n", ns, "statefulset/web", "--timeout=240s"]);
    expect(out).toContain("partitioned roll out complete: 1 new pods have been updated...");
    await poll("web-2 Ready at nginx:1.26", async () => {
      const p = await pods().get(ns, "web-2");
      return isReady(p) && image(p) === "nginx:1.26";
    });
    await w.stop();
    const now = new Map((await pods().list(ns)).items.map((p) => [p.metadata.name!, p]));
    expect(image(now.get("web-0"))).toBe("nginx:1.25");
    expect(image(now.get("web-1"))).toBe("nginx:1.25");
    expect(now.get("web-0")?.metadata.uid).toBe(before.get("web-0"));
    expect(now.get("web-1")?.metadata.uid).toBe(before.get("web-1"));
    expect(now.get("web-2")?.metadata.uid).not.toBe(before.get("web-2"));
    expect(w.seen.some((s) => ["web-0", "web-1"].includes(s.ev.object.metadata.name!) && (s.ev.type === "DELETED" || s.ev.object.metadata.deletionTimestamp))).toBe(false);
    const sts = await sets().get(ns, "web");
    expect(sts.status?.updatedReplicas).toBe(1);
    expect(sts.status?.currentReplicas).toBe(2);
    expect(sts.status?.currentRevision).not.toBe(sts.status?.updateRevision);
    expect(now.get("web-2")?.metadata.labels?.["controller-revision-hash"]).toBe(sts.status?.updateRevision);
  });

  it("kubectl rollout history lists the ControllerRevisions and undo restores the previous template", async () => {
    await ok(["patch", "-n", ns, "sts/web", "-p", JSON.stringify({ spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } })]);
    await ok(["rollout", "status", "-n", ns, "statefulset/web", "--timeout=240s"]);
    let sts = await sets().get(ns, "web");
    expect(sts.status?.currentRevision).toBe(sts.status?.updateRevision);
    const history = await ok(["rollout", "history", "-n", ns, "statefulset/web"]);
    expect(history).toMatch(/REVISION\s+CHANGE-CAUSE/);
    expect(history).toMatch(/^1\s/m);
    expect(history).toMatch(/^2\s/m);
    expect(await ok(["rollout", "history", "-n", ns, "statefulset/web", "--revision=1"])).toContain("nginx:1.25");
    expect(await ok(["get", "controllerrevisions", "-n", ns])).toMatch(/^NAME\s+CONTROLLER\s+REVISION\s+AGE\n(web-\S+\s+statefulset\.apps\/web\s+[12]\s+\S+\n){2}$/);

    expect(await ok(["rollout", "undo", "-n", ns, "statefulset/web"])).toContain("rolled back");
    await ok(["rollout", "status", "-n", ns, "statefulset/web", "--timeout=240s"]);
    await poll("every pod back on nginx:1.25", async () => {
      const items = (await pods().list(ns)).items;
      return items.length === 3 && items.every((p) => isReady(p) && image(p) === "nginx:1.25" && !p.metadata.deletionTimestamp);
    });
    sts = await sets().get(ns, "web");
    expect(image({ spec: sts.spec?.template.spec } as Pod)).toBe("nginx:1.25");
    // Revision 1's snapshot became current again: renumbered to 3, not copied.
    const revs = (await revisions().list(ns)).items.sort((a, b) => a.revision - b.revision);
    expect(revs.map((r) => r.revision)).toEqual([2, 3]);
    expect(revs[1]!.metadata.name).toBe(sts.status?.updateRevision);
    expect(await ok(["rollout", "undo", "-n", ns, "statefulset/web", "--to-revision=3"])).toContain("skipped rollback (current template already matches revision 3)");
  });

  it("deleting the set cascades to its pods and ControllerRevisions", async () => {
    await ok(["delete", "-n", ns, "sts/web"]);
    await poll("pods and revisions of web collected", async () => (await pods().list(ns)).items.length === 0 && (await revisions().list(ns)).items.length === 0);
  });
});

describe("StatefulSet volumeClaimTemplates", { timeout: 300_000 }, () => {
  const ns = "sts-claims";

  beforeAll(async () => {
    await client.resource<Namespace>("", "namespaces").create("", { metadata: { name: ns } });
  });

  function withClaims(name: string, replicas: number, policy: { whenDeleted: string; whenScaled: string }) {
    return {
      apiVersion: "apps/v1",
      kind: "StatefulSet",
      metadata: { name },
      spec: {
        replicas,
        serviceName: name,
        // Parallel: the claims stay unbound (no provisioner yet), so the pods stay Pending and OrderedReady would stop at ordinal 0.
        podManagementPolicy: "Parallel",
        persistentVolumeClaimRetentionPolicy: policy,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "db", image: "postgres:16", volumeMounts: [{ name: "data", mountPath: "/data" }] }] } },
        volumeClaimTemplates: [{ metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } }],
      },
    };
  }

  const claimNames = async () => (await claims().list(ns)).items.filter((c) => !c.metadata.deletionTimestamp).map((c) => c.metadata.name).sort();

  it("creates one PVC per ordinal, mounts it, and with Delete/Delete deletes it on scale-down and with the set", async () => {
    await ok(["apply", "-n", ns, "-f", "-"], JSON.stringify(withClaims("db", 2, { whenDeleted: "Delete", whenScaled: "Delete" })));
    await poll("claims data-db-0 and data-db-1", async () => JSON.stringify(await claimNames()) === JSON.stringify(["data-db-0", "data-db-1"]));
    const pod = await poll("pod db-1", () => pods().get(ns, "db-1"));
    expect(pod.spec?.volumes?.find((v) => v.name === "data")?.persistentVolumeClaim?.claimName).toBe("data-db-1");
    const sts = await sets().get(ns, "db");
    const c0 = await poll("data-db-0 owned by the set", async () => {
      const c = await claims().get(ns, "data-db-0");
      return c.metadata.ownerReferences?.some((r) => r.kind === "StatefulSet" && r.uid === sts.metadata.uid && r.controller) ? c : undefined;
    });
    expect(c0.metadata.labels).toMatchObject({ app: "db" });
    expect(c0.spec?.resources?.requests?.storage).toBe("1Gi");

    await ok(["scale", "-n", ns, "sts/db", "--replicas=1"]);
    await poll("data-db-1 deleted with db-1", async () => JSON.stringify(await claimNames()) === JSON.stringify(["data-db-0"]));
    await ok(["delete", "-n", ns, "sts/db"]);
    await poll("data-db-0 deleted with the set", async () => (await claimNames()).length === 0 && (await pods().list(ns)).items.length === 0);
  });

  it("with Retain/Retain keeps the PVCs through scale-down and deletion of the set", async () => {
    await ok(["apply", "-n", ns, "-f", "-"], JSON.stringify(withClaims("keep", 2, { whenDeleted: "Retain", whenScaled: "Retain" })));
    await poll("claims of keep", async () => JSON.stringify(await claimNames()) === JSON.stringify(["data-keep-0", "data-keep-1"]));
    expect((await claims().get(ns, "data-keep-1")).metadata.ownerReferences ?? []).toEqual([]);
    await ok(["scale", "-n", ns, "sts/keep", "--replicas=1"]);
    await poll("keep-1 gone", async () => (await pods().list(ns)).items.every((p) => p.metadata.name !== "keep-1"));
    await ok(["delete", "-n", ns, "sts/keep"]);
    await poll("keep's pods gone", async () => (await pods().list(ns)).items.length === 0);
    expect(await claimNames()).toEqual(["data-keep-0", "data-keep-1"]);
  });
});
