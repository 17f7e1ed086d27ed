import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Lease, Node } from "../api/index.ts";
import { FakeClient, newLogger } from "../client/index.ts";
import { POOL_LABEL, nodeIPOf, runPool, splitNodeCIDRs } from "./pool.ts";
import type { NodeControl } from "./nodecontrol.ts";
import type { NodeAgent } from "./types.ts";

const log = newLogger("pool-test");
log.level = "silent";

describe("splitNodeCIDRs", () => {
  it("splits a range into consecutive /24s from its network address", () => {
    expect(splitNodeCIDRs("127.64.0.0/14", 3)).toEqual(["127.64.0.0/24", "127.64.1.0/24", "127.64.2.0/24"]);
    expect(splitNodeCIDRs("127.64.255.7/22", 2)).toEqual(["127.64.252.0/24", "127.64.253.0/24"]);
    expect(splitNodeCIDRs("127.64.0.0/14", 1024).at(-1)).toBe("127.67.255.0/24");
    expect(nodeIPOf("127.64.3.0/24")).toBe("127.64.3.1");
  });

  it("refuses a range too small for the nodes, narrower than a /24, or malformed", () => {
    expect(() => splitNodeCIDRs("127.64.0.0/23", 3)).toThrow("pod CIDR 127.64.0.0/23 holds 2 node /24s, too few for 3 nodes");
    expect(() => splitNodeCIDRs("127.64.0.0/25", 1)).toThrow("smaller than one /24");
    expect(() => splitNodeCIDRs("127.64.0/16", 1)).toThrow("invalid pod CIDR");
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("runPool", () => {
  it("refuses a name prefix that cannot be the pool label's value", async () => {
    const abort = new AbortController();
    const prefix = "p".repeat(64);
    await expect(
      runPool({ signal: abort.signal, log }, { client: new FakeClient(), nodes: 1, zone: "z", region: "r", namePrefix: prefix, rootDir: "/nonexistent", podCIDR: "127.201.0.0/16", port: 1, log }),
    ).rejects.toThrow(`cannot be the ${POOL_LABEL} label`);
  });

  it("runs simulated nodes that register, heartbeat and serve on their own node IPs, and stops on abort", async () => {
    const client = new FakeClient();
    const rootDir = mkdtempSync(join(tmpdir(), "kubelet-pool-"));
    const port = await freePort();
    const abort = new AbortController();
    let agents: readonly NodeAgent[] = [];
    const done = runPool(
      { signal: abort.signal, log },
      {
        client,
        nodes: 3,
        zone: "zone-t",
        region: "region-t",
        namePrefix: "pool-t",
        rootDir,
        podCIDR: "127.201.0.0/16",
        port,
        log,
        staggerBatch: 2,
        staggerMs: 10,
        kubelet: { leaseRenewIntervalMs: 200, nodeStatusUpdateFrequencyMs: 200, labels: { pool: "yes" } },
        onAgents: (a) => (agents = a),
      },
    );
    try {
      const nodes = await waitFor("3 Ready nodes", () => {
        const list = client.trackerList("", "nodes") as Node[];
        const ready = list.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
        return ready.length === 3 ? list : undefined;
      });
      expect(agents.map((a) => a.nodeName)).toEqual(["pool-t-0", "pool-t-1", "pool-t-2"]);
      const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
      for (let i = 0; i < 3; i++) {
        const n = byName.get(`pool-t-${i}`)!;
        expect(n.metadata.labels).toMatchObject({ "topology.kubernetes.io/zone": "zone-t", "topology.kubernetes.io/region": "region-t", pool: "yes", [POOL_LABEL]: "pool-t" });
        expect(n.spec?.podCIDR).toBe(`127.201.${i}.0/24`);
        expect(n.status?.addresses?.find((a) => a.type === "InternalIP")?.address).toBe(`127.201.${i}.1`);
        expect(n.status?.daemonEndpoints?.kubeletEndpoint?.Port).toBe(port);
        expect(n.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^kubelab-sim:\/\//);
        const r = await fetch(`http://127.201.${i}.1:${port}/healthz`);
        expect(await r.text()).toBe("ok");
      }
      await waitFor("3 leases", () => ((client.trackerList("coordination.k8s.io", "leases") as Lease[]).length === 3 ? true : undefined));
      // One pod informer for the whole pool.
      expect(client.actions.filter((a) => a.verb === "list" && a.resource === "pods").length).toBe(1);
      expect(client.actions.find((a) => a.verb === "list" && a.resource === "pods")?.listOptions?.fieldSelector).toBe("spec.nodeName!=");
      // One node informer for the whole pool, over the pool's label, shared by every node's status loop.
      const nodeLists = client.actions.filter((a) => a.verb === "list" && a.resource === "nodes");
      expect(nodeLists.map((a) => a.listOptions?.labelSelector)).toEqual([`${POOL_LABEL}=pool-t`]);
      expect(client.actions.filter((a) => a.verb === "watch" && a.resource === "nodes").length).toBe(1);
      // Status rounds every 200 ms read the Nodes from it: after the first rounds, no Node GETs.
      await waitFor("status rounds without Node GETs", async () => {
        client.clearActions();
        await new Promise((r) => setTimeout(r, 1_000));
        return client.actions.some((a) => a.verb === "get" && a.resource === "nodes") ? undefined : true;
      });
      expect(client.actions.filter((a) => a.resource === "leases" && a.verb === "update").length).toBeGreaterThanOrEqual(6);
    } finally {
      abort.abort();
      await done;
      rmSync(rootDir, { recursive: true, force: true });
    }
    await expect(fetch(`http://127.201.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it("stops one node (its kubelet and server down, the others running), starts it again, and skews its clock alone", async () => {
    const client = new FakeClient();
    const rootDir = mkdtempSync(join(tmpdir(), "kubelet-pool-"));
    const port = await freePort();
    const abort = new AbortController();
    let control: NodeControl | undefined;
    let agents: readonly NodeAgent[] = [];
    const done = runPool(
      { signal: abort.signal, log },
      {
        client,
        nodes: 2,
        zone: "zone-t",
        region: "region-t",
        namePrefix: "ctl-t",
        rootDir,
        podCIDR: "127.202.0.0/16",
        port,
        log,
        kubelet: { leaseRenewIntervalMs: 200, nodeStatusUpdateFrequencyMs: 200 },
        onAgents: (a) => (agents = a),
        onControl: (c) => (control = c),
      },
    );
    const renewTime = (name: string) => Date.parse((client.trackerList("coordination.k8s.io", "leases") as Lease[]).find((l) => l.metadata.name === name)?.spec?.renewTime ?? "");
    try {
      await waitFor("2 leases", () => ((client.trackerList("coordination.k8s.io", "leases") as Lease[]).length === 2 ? true : undefined));
      expect(control!.list()).toEqual([
        { name: "ctl-t-0", running: true, stopped: false, clockOffsetMs: 0 },
        { name: "ctl-t-1", running: true, stopped: false, clockOffsetMs: 0 },
      ]);
      expect(await control!.stop("ctl-t-0")).toEqual({ name: "ctl-t-0", running: false, stopped: true, clockOffsetMs: 0 });
      expect(agents.map((a) => a.nodeName)).toEqual(["ctl-t-1"]);
      await expect(fetch(`http://127.202.0.1:${port}/healthz`)).rejects.toThrow();
      expect(await (await fetch(`http://127.202.1.1:${port}/healthz`)).text()).toBe("ok");
      const stoppedAt = renewTime("ctl-t-0");
      await new Promise((r) => setTimeout(r, 600));
      expect(renewTime("ctl-t-0")).toBe(stoppedAt);
      await expect(control!.start("ctl-t-1")).rejects.toThrow("node ctl-t-1 is not stopped");
      await expect(control!.stop("ctl-t-9")).rejects.toThrow("no node ctl-t-9 in this pool");

      expect((await control!.start("ctl-t-0")).running).toBe(true);
      await waitFor("node 0 renewing again", () => (renewTime("ctl-t-0") > stoppedAt ? true : undefined));
      expect(await (await fetch(`http://127.202.0.1:${port}/healthz`)).text()).toBe("ok");

      // Ten minutes behind: node 1's renewals are dated in the past, node 0's are not.
      expect(control!.skew("ctl-t-1", -600_000).clockOffsetMs).toBe(-600_000);
      await waitFor("node 1 renewing 10 minutes in the past", () => (renewTime("ctl-t-1") < Date.now() - 590_000 ? true : undefined));
      expect(renewTime("ctl-t-0")).toBeGreaterThan(Date.now() - 5_000);
      control!.skew("ctl-t-1", 0);
      await waitFor("node 1 on time again", () => (renewTime("ctl-t-1") > Date.now() - 5_000 ? true : undefined));
      expect(() => control!.skew("ctl-t-9", 1)).toThrow("no node ctl-t-9 in this pool");
    } finally {
      abort.abort();
      await done;
      rmSync(rootDir, { recursive: true, force: true });
    }
  });
});
