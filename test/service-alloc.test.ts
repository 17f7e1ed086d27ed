// Service ClusterIP and NodePort allocation: the bitmaps in the store (unit), and through the HTTP
// API of apiservers on one memory store (200 concurrent creates and deletes across two apiservers,
// restart repair, the bad-input Statuses with kube-apiserver's messages).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiServer, openBackend, type Backend } from "../apiserver/index.ts";
import { AllocationBitmap, IPRange, PortRange, RangeAllocator, SERVICE_IPS_KEY, SERVICE_NODE_PORTS_KEY } from "../apiserver/registry/core/services/allocator.ts";
import { ServiceAllocator, type ServiceRangeOptions } from "../apiserver/registry/core/services/allocations.ts";
import type { RegistryOptions } from "../apiserver/registry/registry.ts";
import { DEFAULT_ADMISSION_OPTIONS } from "../apiserver/registry/strategy.ts";

// ---- unit: bitmap and allocator -------------------------------------------------------------------

describe("AllocationBitmap", () => {
  it("sets, clears, counts and round-trips through base64", () => {
    const bm = new AllocationBitmap(20);
    for (const i of [0, 7, 8, 19]) bm.set(i);
    bm.clear(7);
    expect(bm.count()).toBe(3);
    const back = AllocationBitmap.fromBase64(20, bm.toBase64());
    expect(back.offsets()).toEqual([0, 8, 19]);
  });

  it("dynamic picks avoid the static low band until the upper part is full", () => {
    const bm = new AllocationBitmap(10);
    const got: number[] = [];
    for (let k = 0; k < 10; k++) {
      const i = bm.randomFree(4, () => 0.5)!;
      bm.set(i);
      got.push(i);
    }
    expect(got.slice(0, 6).every((i) => i >= 4)).toBe(true);
    expect(got.slice(6).sort()).toEqual([0, 1, 2, 3]);
    expect(bm.randomFree(4, Math.random)).toBeUndefined();
  });
});

describe("ranges", () => {
  it("parses the service CIDR and port range, rejecting bad ones", () => {
    const r = new IPRange("10.96.0.0/16");
    expect(r.size).toBe(65534);
    expect(r.offsetOf("10.96.0.1")).toBe(0);
    expect(r.offsetOf("10.96.255.255")).toBeUndefined(); // broadcast
    expect(r.offsetOf("10.97.0.1")).toBeUndefined();
    expect(r.staticBand).toBe(256);
    expect(() => new IPRange("10.0.0.0/8")).toThrow(/too large/);
    expect(() => new IPRange("nope")).toThrow(/invalid CIDR/);
    const p = new PortRange("30000-32767");
    expect(p.size).toBe(2768);
    expect(p.offsetOf(29999)).toBeUndefined();
    expect(p.offsetOf(32767)).toBe(2767);
    expect(() => new PortRange("5-1")).toThrow(/unable to parse port range/);
  });
});

describe("RangeAllocator on the store", () => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await openBackend("memory://");
  });
  afterAll(async () => {
    await backend.close();
  });

  it("allocates each offset once, fills the range, releases", async () => {
    const a = new RangeAllocator(backend, "/registry/ranges/test1", "x", 6, 2);
    expect(await a.allocate(3)).toBe(true);
    expect(await a.allocate(3)).toBe(false);
    const got = new Set([3]);
    for (let i = 0; i < 5; i++) got.add(await a.allocateNext());
    expect([...got].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    await expect(a.allocateNext()).rejects.toThrow("range is full");
    await a.release(4);
    expect(await a.allocateNext()).toBe(4);
    const stored = JSON.parse((await backend.get("/registry/ranges/test1")).kv!.value) as { kind: string; range: string };
    expect(stored).toMatchObject({ kind: "RangeAllocation", range: "x" });
  });

  it("two allocators on one key (two apiservers) never hand out the same offset", async () => {
    const a = new RangeAllocator(backend, "/registry/ranges/test2", "x", 300, 16);
    const b = new RangeAllocator(backend, "/registry/ranges/test2", "x", 300, 16);
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).allocateNext()));
    expect(new Set(got).size).toBe(300);
    expect((await a.snapshot()).bitmap.count()).toBe(300);
  });
});

describe("repair", () => {
  it("frees leaked bits, sets missing ones and reports duplicates", async () => {
    const backend = await openBackend("memory://");
    const put = (ns: string, name: string, spec: Record<string, unknown>, ts: string) =>
      backend.create(`/registry/services/${ns}/${name}`, JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { namespace: ns, name, creationTimestamp: ts }, spec }));
    await put("default", "a", { type: "NodePort", clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"], ports: [{ port: 80, nodePort: 30080 }] }, "2026-01-01T00:00:00Z");
    await put("default", "b", { clusterIP: "10.96.0.10", clusterIPs: ["10.96.0.10"], ports: [{ port: 80 }] }, "2026-01-01T00:00:01Z");
    await put("default", "c", { clusterIP: "10.1.0.1", clusterIPs: ["10.1.0.1"], ports: [{ port: 80 }] }, "2026-01-01T00:00:02Z");
    await put("default", "h", { clusterIP: "None", clusterIPs: ["None"], ports: [{ port: 80 }] }, "2026-01-01T00:00:03Z");
    const alloc = new ServiceAllocator(backend);
    await alloc.ips.allocate(alloc.ipRange.offsetOf("10.96.0.99")!); // leaked
    await alloc.ports.allocate(31000 - 30000); // leaked
    const r = await alloc.repair();
    expect(r.leakedIPs).toEqual(["10.96.0.99"]);
    expect(r.missingIPs).toEqual(["10.96.0.10"]);
    expect(r.leakedPorts).toEqual([31000]);
    expect(r.missingPorts).toEqual([30080]);
    expect(r.duplicates).toEqual([
      { namespace: "default", name: "b", reason: "ClusterIPAlreadyAllocated", message: "Cluster IP [IPv4]:10.96.0.10 was assigned to multiple services; please recreate service" },
    ]);
    expect(r.outOfRange.map((o) => o.name)).toEqual(["c"]);
    expect((await alloc.ips.snapshot()).bitmap.offsets()).toEqual([alloc.ipRange.offsetOf("10.96.0.10")]);
    expect((await alloc.ports.snapshot()).bitmap.offsets()).toEqual([80]);
    // A second pass finds nothing to do.
    const again = await alloc.repair();
    expect([again.leakedIPs, again.missingIPs, again.leakedPorts, again.missingPorts]).toEqual([[], [], [], []]);
    await backend.close();
  });
});

// ---- through the API ----------------------------------------------------------------------------

interface Resp {
  status: number;
  text: string;
  body: Record<string, unknown> & { spec?: Record<string, unknown>; message?: string; reason?: string; kind?: string; items?: { spec: Record<string, unknown>; metadata: { name: string } }[] };
}

async function call(base: string, method: string, path: string, body?: unknown, contentType = "application/json"): Promise<Resp> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { Accept: "application/json", ...(body !== undefined ? { "Content-Type": contentType } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: Resp["body"] = {};
  try {
    parsed = JSON.parse(text) as Resp["body"];
  } catch {
    // not JSON
  }
  return { status: r.status, text, body: parsed };
}

function svc(name: string, spec: Record<string, unknown>) {
  return { apiVersion: "v1", kind: "Service", metadata: { name }, spec: { ports: [{ port: 80, protocol: "TCP" }], ...spec } };
}

async function bitmaps(backend: Backend, ranges: ServiceRangeOptions = {}) {
  const alloc = new ServiceAllocator(backend, ranges);
  return { ips: (await alloc.ips.snapshot()).bitmap, ports: (await alloc.ports.snapshot()).bitmap, alloc };
}

describe("ClusterIP and NodePort allocation through the API", () => {
  let backend: Backend;
  let a: ApiServer;
  let b: ApiServer;
  let baseA = "";
  let baseB = "";
  const SVC = "/api/v1/namespaces/default/services";

  beforeAll(async () => {
    backend = await openBackend("memory://");
    a = new ApiServer({ backend });
    b = new ApiServer({ backend });
    baseA = `http://127.0.0.1:${await a.start(0)}`;
    baseB = `http://127.0.0.1:${await b.start(0)}`;
  });
  afterAll(async () => {
    await a.stop();
    await b.stop();
    await backend.close();
  });

  async function expectBitmapMatchesServices() {
    const list = await call(baseA, "GET", "/api/v1/services");
    const items = list.body.items ?? [];
    const { ips, ports, alloc } = await bitmaps(backend);
    const held = items.flatMap((s) => alloc.held({ apiVersion: "v1", kind: "Service", metadata: s.metadata, spec: s.spec }).ips);
    expect(new Set(held).size, "no duplicate ClusterIP").toBe(held.length);
    expect(ips.offsets(), "bitmap = services' IPs (no leaked bit)").toEqual([...held].sort((x, y) => x - y));
    const heldPorts = items.flatMap((s) => alloc.held({ apiVersion: "v1", kind: "Service", metadata: s.metadata, spec: s.spec }).ports);
    expect(ports.offsets()).toEqual([...new Set(heldPorts)].sort((x, y) => x - y));
    return items;
  }

  it("200 services created and deleted concurrently over two apiservers: no duplicate, no leak, repaired state after restart", async () => {
    const created = await Promise.all(
      Array.from({ length: 200 }, (_, i) => call(i % 2 ? baseA : baseB, "POST", SVC, svc(`bulk-${i}`, i % 4 === 0 ? { type: "NodePort" } : {}))),
    );
    for (const r of created) expect(r.status, r.text).toBe(201);
    const ips = created.map((r) => r.body.spec!.clusterIP as string);
    expect(new Set(ips).size).toBe(200);
    for (const ip of ips) expect(ip).toMatch(/^10\.96\.\d+\.\d+$/);
    await expectBitmapMatchesServices();

    // Delete half while creating 100 more, through both apiservers at once.
    const mixed = await Promise.all([
      ...Array.from({ length: 100 }, (_, i) => call(i % 2 ? baseB : baseA, "DELETE", `${SVC}/bulk-${i}`)),
      ...Array.from({ length: 100 }, (_, i) => call(i % 2 ? baseA : baseB, "POST", SVC, svc(`more-${i}`, i % 3 === 0 ? { type: "LoadBalancer" } : {}))),
    ]);
    for (const r of mixed) expect(r.status, r.text).toBeLessThan(300);
    const items = await expectBitmapMatchesServices();
    expect(items.filter((s) => /^(bulk|more)-/.test(s.metadata.name))).toHaveLength(200);

    // Restart: a new apiserver on the same store finds the bitmap consistent with the Services.
    await a.stop();
    a = new ApiServer({ backend });
    baseA = `http://127.0.0.1:${await a.start(0)}`;
    const rep = a.registry.serviceRepair!;
    expect([rep.leakedIPs, rep.missingIPs, rep.leakedPorts, rep.missingPorts, rep.duplicates]).toEqual([[], [], [], [], []]);

    const gone = await Promise.all(items.filter((s) => /^(bulk|more)-/.test(s.metadata.name)).map((s, i) => call(i % 2 ? baseA : baseB, "DELETE", `${SVC}/${s.metadata.name}`)));
    for (const r of gone) expect(r.status, r.text).toBe(200);
    await expectBitmapMatchesServices();
    expect((await bitmaps(backend)).ips.count()).toBe(0);
  });

  it("repairs a leaked bit and a missing bit at restart", async () => {
    const r = await call(baseA, "POST", SVC, svc("kept", { clusterIP: "10.96.0.50" }));
    expect(r.status, r.text).toBe(201);
    const { alloc } = await bitmaps(backend);
    await alloc.ips.release(alloc.ipRange.offsetOf("10.96.0.50")!); // lost
    await alloc.ips.allocate(alloc.ipRange.offsetOf("10.96.0.51")!); // leaked
    await a.stop();
    a = new ApiServer({ backend });
    baseA = `http://127.0.0.1:${await a.start(0)}`;
    expect(a.registry.serviceRepair!.missingIPs).toEqual(["10.96.0.50"]);
    expect(a.registry.serviceRepair!.leakedIPs).toEqual(["10.96.0.51"]);
    await expectBitmapMatchesServices();
    // The repaired bit is honoured again: the IP is taken.
    const dup = await call(baseB, "POST", SVC, svc("dup", { clusterIP: "10.96.0.50" }));
    expect(dup.status).toBe(422);
    expect(await call(baseA, "DELETE", `${SVC}/kept`)).toMatchObject({ status: 200 });
  });

  it("a requested ClusterIP is honoured, then refused while taken, and free again after delete", async () => {
    const r = await call(baseA, "POST", SVC, svc("want", { clusterIP: "10.96.0.5" }));
    expect(r.status, r.text).toBe(201);
    expect(r.body.spec).toMatchObject({ clusterIP: "10.96.0.5", clusterIPs: ["10.96.0.5"], ipFamilies: ["IPv4"], ipFamilyPolicy: "SingleStack" });
    const taken = await call(baseB, "POST", SVC, svc("want2", { clusterIP: "10.96.0.5" }));
    expect(taken.status).toBe(422);
    expect(taken.body).toMatchObject({ kind: "Status", reason: "Invalid" });
    expect(taken.body.message).toBe('Service "want2" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.5"}: failed to allocate IP 10.96.0.5: provided IP is already allocated');
    expect((await call(baseA, "DELETE", `${SVC}/want`)).status).toBe(200);
    expect((await call(baseB, "POST", SVC, svc("want2", { clusterIP: "10.96.0.5" }))).status).toBe(201);
    expect((await call(baseA, "DELETE", `${SVC}/want2`)).status).toBe(200);
  });

  it("refuses an IP outside the range with the range in the message", async () => {
    const r = await call(baseA, "POST", SVC, svc("far", { clusterIP: "10.0.0.5" }));
    expect(r.status).toBe(422);
    expect(r.body.message).toBe(
      'Service "far" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: the provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/16',
    );
  });

  it("headless services get None and take no bit; ExternalName gets no IP", async () => {
    const before = (await bitmaps(backend)).ips.count();
    const h = await call(baseA, "POST", SVC, svc("headless", { clusterIP: "None" }));
    expect(h.status, h.text).toBe(201);
    expect(h.body.spec).toMatchObject({ clusterIP: "None", clusterIPs: ["None"] });
    const e = await call(baseA, "POST", SVC, { apiVersion: "v1", kind: "Service", metadata: { name: "ext" }, spec: { type: "ExternalName", externalName: "example.com" } });
    expect(e.status, e.text).toBe(201);
    expect(e.body.spec!.clusterIP).toBeUndefined();
    expect((await bitmaps(backend)).ips.count()).toBe(before);
    const bad = await call(baseA, "POST", SVC, { apiVersion: "v1", kind: "Service", metadata: { name: "ext2" }, spec: { type: "ExternalName", externalName: "example.com", clusterIP: "10.96.0.7" } });
    expect(bad.status).toBe(422);
    expect(bad.body.message).toContain("spec.clusterIPs: Forbidden: may not be set for ExternalName services");
    const noName = await call(baseA, "POST", SVC, { apiVersion: "v1", kind: "Service", metadata: { name: "ext3" }, spec: { type: "ExternalName" } });
    expect(noName.status).toBe(422);
    expect(noName.body.message).toContain("spec.externalName: Required value");
    expect((await bitmaps(backend)).ips.count()).toBe(before);
  });

  it("node ports: requested honoured, taken or out of range refused, duplicated in one service refused", async () => {
    const r = await call(baseA, "POST", SVC, svc("np", { type: "NodePort", ports: [{ port: 80, protocol: "TCP", nodePort: 30080 }] }));
    expect(r.status, r.text).toBe(201);
    expect((r.body.spec!.ports as { nodePort: number }[])[0]!.nodePort).toBe(30080);
    const taken = await call(baseB, "POST", SVC, svc("np2", { type: "NodePort", ports: [{ port: 80, protocol: "TCP", nodePort: 30080 }] }));
    expect(taken.status).toBe(422);
    expect(taken.body.message).toBe('Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated');
    const far = await call(baseB, "POST", SVC, svc("np3", { type: "NodePort", ports: [{ port: 80, protocol: "TCP", nodePort: 8080 }] }));
    expect(far.status).toBe(422);
    expect(far.body.message).toBe('Service "np3" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767');
    const twice = await call(baseB, "POST", SVC, svc("np4", {
      type: "NodePort",
      ports: [
        { name: "a", port: 80, protocol: "TCP", nodePort: 30090 },
        { name: "b", port: 81, protocol: "TCP", nodePort: 30090 },
      ],
    }));
    expect(twice.status).toBe(422);
    expect(twice.body.message).toContain("spec.ports[1].nodePort: Duplicate value: 30090");
    // Nothing was left allocated by the refused creates.
    const { ports } = await bitmaps(backend);
    expect(ports.has(90)).toBe(false);
    // One port number over TCP and UDP shares a node port, as upstream.
    const dns = await call(baseB, "POST", SVC, svc("dns", { type: "NodePort", ports: [{ name: "t", port: 53, protocol: "TCP" }, { name: "u", port: 53, protocol: "UDP" }] }));
    expect(dns.status, dns.text).toBe(201);
    const np = (dns.body.spec!.ports as { nodePort: number }[]).map((p) => p.nodePort);
    expect(np[0]).toBe(np[1]);
    expect((await call(baseB, "DELETE", `${SVC}/dns`)).status).toBe(200);
  });

  it("type changes: NodePort -> ClusterIP releases the port, ClusterIP -> ExternalName releases the IP, back allocates", async () => {
    // np holds 30080 from the test above.
    const cur = await call(baseA, "GET", `${SVC}/np`);
    const ip = cur.body.spec!.clusterIP as string;
    const toCluster = await call(baseA, "PUT", `${SVC}/np`, { ...cur.body, spec: { ...cur.body.spec, type: "ClusterIP", ports: [{ port: 80, protocol: "TCP" }] } });
    expect(toCluster.status, toCluster.text).toBe(200);
    expect(toCluster.body.spec!.clusterIP).toBe(ip);
    const reuse = await call(baseB, "POST", SVC, svc("np2", { type: "NodePort", ports: [{ port: 80, protocol: "TCP", nodePort: 30080 }] }));
    expect(reuse.status, reuse.text).toBe(201);

    // Changing the ClusterIP is refused.
    const move = await call(baseA, "PATCH", `${SVC}/np`, { spec: { clusterIP: "10.96.0.77", clusterIPs: ["10.96.0.77"] } }, "application/merge-patch+json");
    expect(move.status).toBe(422);
    expect(move.body.message).toContain("may not change once set");

    const toExt = await call(baseA, "PATCH", `${SVC}/np`, { spec: { type: "ExternalName", externalName: "example.com", clusterIP: null, clusterIPs: null, ports: null } }, "application/merge-patch+json");
    expect(toExt.status, toExt.text).toBe(200);
    const { ips, alloc } = await bitmaps(backend);
    expect(ips.has(alloc.ipRange.offsetOf(ip)!)).toBe(false);
    const back = await call(baseA, "PATCH", `${SVC}/np`, { spec: { type: "ClusterIP", externalName: null, ports: [{ port: 80, protocol: "TCP" }] } }, "application/merge-patch+json");
    expect(back.status, back.text).toBe(200);
    expect(back.body.spec!.clusterIP).toMatch(/^10\.96\./);
    await expectBitmapMatchesServices();
  });

  it("a dry run and a failed create take nothing", async () => {
    const dry = await call(baseA, "POST", `${SVC}?dryRun=All`, svc("dry", { clusterIP: "10.96.0.200" }));
    expect(dry.status, dry.text).toBe(201);
    expect(dry.body.spec!.clusterIP).toBe("10.96.0.200");
    expect((await call(baseA, "POST", SVC, svc("dry", { clusterIP: "10.96.0.200" }))).status).toBe(201);
    // Same name again with another IP: 409, and that IP stays free.
    expect((await call(baseB, "POST", SVC, svc("dry", { clusterIP: "10.96.0.201" }))).status).toBe(409);
    expect((await call(baseB, "POST", SVC, svc("dry2", { clusterIP: "10.96.0.201" }))).status).toBe(201);
    // Bad ports: 422 and no IP taken.
    const badPorts = await call(baseB, "POST", SVC, svc("bad", { clusterIP: "10.96.0.202", ports: [{ port: 80, protocol: "TCP" }, { port: 80, protocol: "TCP" }] }));
    expect(badPorts.status).toBe(422);
    expect(badPorts.body.message).toContain("Duplicate value");
    expect((await call(baseB, "POST", SVC, svc("ok", { clusterIP: "10.96.0.202" }))).status).toBe(201);
    await expectBitmapMatchesServices();
  });

  it("the bitmaps are stored under /registry/ranges and not served as a resource", async () => {
    for (const key of [SERVICE_IPS_KEY, SERVICE_NODE_PORTS_KEY]) {
      const { kv } = await backend.get(key);
      expect(JSON.parse(kv!.value)).toMatchObject({ apiVersion: "v1", kind: "RangeAllocation" });
    }
    expect((await call(baseA, "GET", "/api/v1/ranges")).status).toBe(404);
  });
});

describe("configured ranges (--service-cluster-ip-range, --service-node-port-range)", () => {
  let backend: Backend;
  let server: ApiServer;
  let base = "";
  const SVC = "/api/v1/namespaces/default/services";
  let options: RegistryOptions;
  beforeAll(async () => {
    backend = await openBackend("memory://");
    options = { ...DEFAULT_ADMISSION_OPTIONS, serviceClusterIPRange: "10.100.0.0/29", serviceNodePortRange: "31000-31001" };
    server = new ApiServer({ backend, admission: options });
    base = `http://127.0.0.1:${await server.start(0)}`;
  });
  afterAll(async () => {
    await server.stop();
    await backend.close();
  });

  it("allocates inside the configured range until it is full, and names the range in refusals", async () => {
    const ips: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await call(base, "POST", SVC, svc(`s${i}`, {}));
      expect(r.status, r.text).toBe(201);
      ips.push(r.body.spec!.clusterIP as string);
    }
    expect(ips.sort()).toEqual(["10.100.0.1", "10.100.0.2", "10.100.0.3", "10.100.0.4", "10.100.0.5", "10.100.0.6"]);
    const full = await call(base, "POST", SVC, svc("s6", {}));
    expect(full.status).toBe(500);
    expect(full.body.message).toBe("Internal error occurred: failed to allocate a serviceIP: range is full");
    const far = await call(base, "POST", SVC, svc("far", { clusterIP: "10.96.0.10" }));
    expect(far.body.message).toContain("The range of valid IPs is 10.100.0.0/29");
    expect((await call(base, "DELETE", `${SVC}/s0`)).status).toBe(200);
    const np = await call(base, "POST", SVC, svc("np", { type: "NodePort", ports: [{ port: 80, protocol: "TCP", nodePort: 30080 }] }));
    expect(np.body.message).toBe('Service "np" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is not in the valid range. The range of valid ports is 31000-31001');
    const two = await call(base, "POST", SVC, svc("np", { type: "NodePort", ports: [{ name: "a", port: 80, protocol: "TCP" }, { name: "b", port: 81, protocol: "TCP" }] }));
    expect(two.status, two.text).toBe(201);
    expect((two.body.spec!.ports as { nodePort: number }[]).map((p) => p.nodePort).sort()).toEqual([31000, 31001]);
    expect((await call(base, "DELETE", `${SVC}/s1`)).status).toBe(200);
    const none = await call(base, "POST", SVC, svc("np2", { type: "NodePort" }));
    expect(none.status).toBe(500);
    expect(none.body.message).toBe("Internal error occurred: failed to allocate a nodePort: range is full");
    // The refused NodePort create gave its ClusterIP back.
    expect((await bitmaps(backend, options)).ips.count()).toBe(5);
  });
});

describe("service validation the allocator relies on", () => {
  let backend: Backend;
  let server: ApiServer;
  let base = "";
  const SVC = "/api/v1/namespaces/default/services";
  beforeAll(async () => {
    backend = await openBackend("memory://");
    server = new ApiServer({ backend });
    base = `http://127.0.0.1:${await server.start(0)}`;
  });
  afterAll(async () => {
    await server.stop();
    await backend.close();
  });

  it.each([
    ["healthCheckNodePort on a NodePort", { type: "NodePort", healthCheckNodePort: 30111 }, "spec.healthCheckNodePort: Forbidden: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"],
    ["two IPv4 clusterIPs", { clusterIP: "10.96.0.30", clusterIPs: ["10.96.0.30", "10.96.0.31"] }, 'spec.clusterIPs: Invalid value: []string{"10.96.0.30", "10.96.0.31"}: may specify no more than one IP for each IP family'],
    ["an IPv6 family", { ipFamilies: ["IPv6"] }, 'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
    ["RequireDualStack", { ipFamilyPolicy: "RequireDualStack" }, 'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services'],
    ["nodePort on a ClusterIP service", { ports: [{ port: 80, protocol: "TCP", nodePort: 30100 }] }, "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    ["an unknown protocol", { ports: [{ port: 80, protocol: "HTTP" }] }, 'spec.ports[0].protocol: Unsupported value: "HTTP"'],
  ])("refuses %s with a 422 and takes nothing", async (_what, spec, message) => {
    const r = await call(base, "POST", SVC, svc("bad", spec));
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ kind: "Status", reason: "Invalid" });
    expect(r.body.message).toContain(message);
    const { ips, ports } = await bitmaps(backend);
    expect([ips.count(), ports.count()]).toEqual([0, 0]);
  });

  it("PreferDualStack on this single-stack cluster gets IPv4 only", async () => {
    const r = await call(base, "POST", SVC, svc("pref", { ipFamilyPolicy: "PreferDualStack", ipFamilies: ["IPv4", "IPv6"] }));
    expect(r.status, r.text).toBe(201);
    expect(r.body.spec).toMatchObject({ ipFamilies: ["IPv4"], ipFamilyPolicy: "PreferDualStack" });
    expect((await call(base, "DELETE", `${SVC}/pref`)).status).toBe(200);
  });

  it("a LoadBalancer with externalTrafficPolicy Local gets a healthCheckNodePort, released on delete", async () => {
    const r = await call(base, "POST", SVC, svc("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local" }));
    expect(r.status, r.text).toBe(201);
    const hc = r.body.spec!.healthCheckNodePort as number;
    expect(hc).toBeGreaterThanOrEqual(30000);
    expect((r.body.spec!.ports as { nodePort: number }[])[0]!.nodePort).not.toBe(hc);
    expect((await bitmaps(backend)).ports.count()).toBe(2);
    expect((await call(base, "DELETE", `${SVC}/lb`)).status).toBe(200);
    expect((await bitmaps(backend)).ports.count()).toBe(0);
  });
});

describe("restart on a file:// store", () => {
  it("the bitmap persisted with the Services matches them after the apiserver restarts", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "svc-alloc-"));
    const SVC = "/api/v1/namespaces/default/services";
    try {
      let backend = await openBackend(`file://${dir}`);
      let server = new ApiServer({ backend });
      let base = `http://127.0.0.1:${await server.start(0)}`;
      const made = await Promise.all(Array.from({ length: 40 }, (_, i) => call(base, "POST", SVC, svc(`f${i}`, i % 2 ? { type: "NodePort" } : {}))));
      for (const r of made) expect(r.status, r.text).toBe(201);
      for (let i = 0; i < 40; i += 3) expect((await call(base, "DELETE", `${SVC}/f${i}`)).status).toBe(200);
      const before = (await bitmaps(backend)).ips.offsets();
      await server.stop();
      await backend.close();

      backend = await openBackend(`file://${dir}`);
      server = new ApiServer({ backend });
      base = `http://127.0.0.1:${await server.start(0)}`;
      const rep = server.registry.serviceRepair!;
      expect([rep.leakedIPs, rep.missingIPs, rep.leakedPorts, rep.missingPorts, rep.duplicates]).toEqual([[], [], [], [], []]);
      const { ips, alloc } = await bitmaps(backend);
      expect(ips.offsets()).toEqual(before);
      const items = (await call(base, "GET", SVC)).body.items ?? [];
      expect(items).toHaveLength(26);
      const held = items.flatMap((s) => alloc.held({ apiVersion: "v1", kind: "Service", metadata: s.metadata, spec: s.spec }).ips).sort((x, y) => x - y);
      expect(ips.offsets()).toEqual(held);
      await server.stop();
      await backend.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("repair at start records an Event for an address held twice", () => {
  it("the later Service gets a Warning ClusterIPAlreadyAllocated event", async () => {
    const backend = await openBackend("memory://");
    for (const [name, ts] of [["first", "2026-01-01T00:00:00Z"], ["second", "2026-01-01T00:00:05Z"]] as const) {
      await backend.create(
        `/registry/services/default/${name}`,
        JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { namespace: "default", name, uid: name, creationTimestamp: ts }, spec: { clusterIP: "10.96.0.40", clusterIPs: ["10.96.0.40"], ports: [{ port: 80, protocol: "TCP" }] } }),
      );
    }
    const server = new ApiServer({ backend });
    const base = `http://127.0.0.1:${await server.start(0)}`;
    try {
      const events = (await call(base, "GET", "/api/v1/namespaces/default/events")).body.items as unknown as { reason: string; type: string; message: string; involvedObject: { name: string } }[];
      expect(events.map((e) => ({ reason: e.reason, type: e.type, name: e.involvedObject.name, message: e.message }))).toEqual([
        { reason: "ClusterIPAlreadyAllocated", type: "Warning", name: "second", message: "Cluster IP [IPv4]:10.96.0.40 was assigned to multiple services; please recreate service" },
      ]);
    } finally {
      await server.stop();
      await backend.close();
    }
  });
});

describe("healthCheckNodePort follows externalTrafficPolicy", () => {
  it("switching a LoadBalancer from Local to Cluster releases its healthCheckNodePort", async () => {
    const backend = await openBackend("memory://");
    const server = new ApiServer({ backend });
    const base = `http://127.0.0.1:${await server.start(0)}`;
    const SVC = "/api/v1/namespaces/default/services";
    try {
      const r = await call(base, "POST", SVC, svc("lb", { type: "LoadBalancer", externalTrafficPolicy: "Local" }));
      expect(r.status, r.text).toBe(201);
      expect((await bitmaps(backend)).ports.count()).toBe(2);
      const p = await call(base, "PATCH", `${SVC}/lb`, { spec: { externalTrafficPolicy: "Cluster" } }, "application/merge-patch+json");
      expect(p.status, p.text).toBe(200);
      expect(p.body.spec!.healthCheckNodePort).toBeUndefined();
      expect((await bitmaps(backend)).ports.count()).toBe(1);
      const back = await call(base, "PATCH", `${SVC}/lb`, { spec: { externalTrafficPolicy: "Local" } }, "application/merge-patch+json");
      expect(back.status, back.text).toBe(200);
      expect(back.body.spec!.healthCheckNodePort).toBeGreaterThanOrEqual(30000);
      expect((await bitmaps(backend)).ports.count()).toBe(2);
    } finally {
      await server.stop();
      await backend.close();
    }
  });
});
