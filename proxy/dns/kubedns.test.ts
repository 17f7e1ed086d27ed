import { describe, expect, it } from "vitest";
import type { EndpointSlice, Service } from "../../api/index.ts";
import { FakeClient, FakeClock, fakeErrors, fakeLister, flushPromises, newLogger, type Context } from "../../client/index.ts";
import { ControllerName as EndpointSliceControllerName, serviceKeyOfSlice } from "../../controllers/endpointslice/index.ts";
import { desiredService, desiredSlice, KubeDNSKeeper } from "./kubedns.ts";

const log = newLogger("kubedns-test", { level: "silent" });
const ctx: Context = { signal: new AbortController().signal, log };
const base = { serviceIP: "127.10.0.10", address: "127.0.0.1", port: 1053, name: "dns", zone: "local-1a" };

/** A keeper whose listers hold what the fake API holds now (as synced informers would). */
function keeperOver(client: FakeClient): KubeDNSKeeper {
  return new KubeDNSKeeper({
    client,
    ...base,
    services: fakeLister(client.trackerList("", "services") as Service[]),
    endpointSlices: fakeLister(client.trackerList("discovery.k8s.io", "endpointslices") as EndpointSlice[]),
  });
}

describe("KubeDNSKeeper", () => {
  it("creates the selector-less kube-dns Service on the configured ClusterIP and our EndpointSlice", async () => {
    const client = new FakeClient();
    await keeperOver(client).sync(ctx);
    const svc = client.tracker("", "services", "kube-system", "kube-dns") as Service;
    expect(svc.metadata.labels?.["k8s-app"]).toBe("kube-dns");
    expect(svc.spec?.selector).toBeUndefined();
    expect(svc.spec?.clusterIP).toBe("127.10.0.10");
    expect(svc.spec?.ports).toEqual([
      { name: "dns", protocol: "UDP", port: 53, targetPort: 1053 },
      { name: "dns-tcp", protocol: "TCP", port: 53, targetPort: 1053 },
    ]);
    const slice = client.tracker("discovery.k8s.io", "endpointslices", "kube-system", "kube-dns-dns") as EndpointSlice;
    expect(slice.metadata.labels).toMatchObject({ "kubernetes.io/service-name": "kube-dns", "endpointslice.kubernetes.io/managed-by": "dns.kubelab.io" });
    expect(slice.endpoints).toEqual([{ addresses: ["127.0.0.1"], conditions: { ready: true, serving: true, terminating: false }, zone: "local-1a" }]);
    expect(slice.ports).toEqual([
      { name: "dns", protocol: "UDP", port: 1053 },
      { name: "dns-tcp", protocol: "TCP", port: 1053 },
    ]);
  });

  it("writes nothing when both are as they should be", async () => {
    const client = new FakeClient([desiredService(base), desiredSlice(base)]);
    await keeperOver(client).sync(ctx);
    expect(client.writeActions()).toEqual([]);
  });

  it("fixes a Service whose ports or selector were changed, and a slice whose endpoint was changed", async () => {
    const svc = desiredService(base);
    svc.spec!.ports = [{ name: "dns", protocol: "UDP", port: 53, targetPort: 9999 }];
    svc.spec!.selector = { app: "coredns" };
    const slice = desiredSlice(base);
    slice.endpoints = [{ addresses: ["127.0.0.99"] }];
    const client = new FakeClient([svc, slice]);
    await keeperOver(client).sync(ctx);
    expect(client.writeActions().map((a) => `${a.verb} ${a.resource}`)).toEqual(["update services", "update endpointslices"]);
    const fixed = client.tracker("", "services", "kube-system", "kube-dns") as Service;
    expect(fixed.spec?.selector).toBeUndefined();
    expect(fixed.spec?.ports?.map((p) => p.targetPort)).toEqual([1053, 1053]);
    expect((client.tracker("discovery.k8s.io", "endpointslices", "kube-system", "kube-dns-dns") as EndpointSlice).endpoints[0]!.addresses).toEqual(["127.0.0.1"]);
  });

  it("leaves a kube-dns Service with another ClusterIP alone (and still publishes its slice)", async () => {
    const other = desiredService({ serviceIP: "127.10.0.99", port: 53 });
    const client = new FakeClient([other]);
    await keeperOver(client).sync(ctx);
    expect(client.writeActions().map((a) => `${a.verb} ${a.resource}`)).toEqual(["create endpointslices"]);
    expect((client.tracker("", "services", "kube-system", "kube-dns") as Service).spec?.clusterIP).toBe("127.10.0.99");
  });

  it("deletes its own slice on shutdown, and a missing slice is not an error", async () => {
    const client = new FakeClient([desiredService(base), desiredSlice(base)]);
    const k = keeperOver(client);
    await k.removeSlice();
    expect(client.tracker("discovery.k8s.io", "endpointslices", "kube-system", "kube-dns-dns")).toBeUndefined();
    await expect(k.removeSlice()).resolves.toBeUndefined();
  });

  it("labels its slice so that the endpointslice controller does not consider it its own", () => {
    const s = desiredSlice(base);
    expect(s.metadata.labels?.["endpointslice.kubernetes.io/managed-by"]).not.toBe(EndpointSliceControllerName);
    expect(serviceKeyOfSlice(s)).toBeUndefined();
  });

  it("runs: syncs at start, again on a kick, retries a failure after its backoff (a kick does not cut it short), stops on abort", async () => {
    const client = new FakeClient();
    let failures = 1;
    client.prependReactor("create", "services", () => (failures-- > 0 ? { error: fakeErrors.internal("etcd is down") } : undefined));
    const clock = new FakeClock();
    const k = new KubeDNSKeeper({ client, ...base, clock, services: fakeLister<Service>([]), endpointSlices: fakeLister<EndpointSlice>([]) });
    const stop = new AbortController();
    const running = k.run({ signal: stop.signal, log });
    await flushPromises();
    const creates = () => client.writeActions().filter((a) => a.verb === "create").map((a) => a.resource);
    expect(creates()).toEqual(["services"]); // failed: no slice yet
    k.kick();
    await flushPromises();
    expect(creates()).toEqual(["services"]);
    await clock.advance(1000);
    expect(creates()).toEqual(["services", "services", "endpointslices"]);
    k.kick();
    await flushPromises();
    // The listers are empty, so it tries to create both again (AlreadyExists is not an error).
    expect(creates()).toEqual(["services", "services", "endpointslices", "services", "endpointslices"]);
    stop.abort();
    await running;
    expect(clock.pending()).toBe(0);
  });
});
