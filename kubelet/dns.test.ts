// Pod DNS forming, after upstream's pkg/kubelet/network/dns/dns_test.go, plus kubelab's local-nameserver rule.

import { describe, expect, it } from "vitest";
import type { Pod, PodSpec } from "../api/core/v1.ts";
import { formPodDNS, parseResolvConf, type FormDNSInput } from "./dns.ts";

const pod = (spec: Partial<PodSpec>, ns = "web"): Pod => ({ apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: ns, uid: "u1" }, spec: { containers: [{ name: "c", image: "i" }], ...spec } });
const local = (ip: string) => ip.startsWith("127.") || ip === "10.88.0.1";
const input = (over: Partial<FormDNSInput> = {}): FormDNSInput => ({
  clusterDNS: ["10.96.0.10"],
  clusterDomain: "cluster.local",
  host: { servers: ["127.0.0.53", "10.255.255.53"], searches: ["corp.example"], options: ["edns0"] },
  isLocal: local,
  ...over,
});

describe("parseResolvConf", () => {
  it("reads nameservers, the last search line (trailing dots and '.' dropped) and merged options; comments ignored", () => {
    const c = parseResolvConf("# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # office\nsearch a.example. b.example\nsearch c.example . d.example\noptions ndots:2 edns0\noptions ndots:3 rotate\n;nameserver 9.9.9.9\n");
    expect(c).toEqual({ servers: ["127.0.0.53", "10.0.0.2"], searches: ["c.example", "d.example"], options: ["ndots:3", "edns0", "rotate"] });
  });
  it("an empty file is empty", () => {
    expect(parseResolvConf("")).toEqual({ servers: [], searches: [], options: [] });
  });
});

describe("formPodDNS", () => {
  it("ClusterFirst (the default): the cluster DNS only, the cluster search path then the host's, ndots:5; no events", () => {
    const { config, events } = formPodDNS(pod({}), input());
    expect(config).toEqual({ servers: ["10.96.0.10"], searches: ["web.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"], options: ["ndots:5"] });
    expect(events).toEqual([]);
    expect(formPodDNS(pod({ dnsPolicy: "ClusterFirst" }, "kube-system"), input({ host: undefined })).config.searches).toEqual(["kube-system.svc.cluster.local", "svc.cluster.local", "cluster.local"]);
  });

  it("several cluster DNS servers, in order; no cluster domain: only the host's search domains", () => {
    const { config } = formPodDNS(pod({}), input({ clusterDNS: ["10.96.0.10", "10.96.0.11"], clusterDomain: "" }));
    expect(config).toEqual({ servers: ["10.96.0.10", "10.96.0.11"], searches: ["corp.example"], options: ["ndots:5"] });
  });

  it("ClusterFirst without cluster DNS falls back to Default with a MissingClusterDNS warning (and the local filter)", () => {
    const { config, events } = formPodDNS(pod({}), input({ clusterDNS: [] }));
    expect(config).toEqual({ servers: ["127.0.0.53"], searches: ["corp.example"], options: ["edns0"] });
    expect(events.map((e) => e.reason)).toEqual(["MissingClusterDNS", "DNSConfigForming"]);
    expect(events[0].message).toContain(`kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" policy. Falling back to "Default" policy.`);
  });

  it("Default: the host's file, minus nameservers not on this machine (a DNSConfigForming warning names them)", () => {
    const { config, events } = formPodDNS(pod({ dnsPolicy: "Default" }), input());
    expect(config).toEqual({ servers: ["127.0.0.53"], searches: ["corp.example"], options: ["edns0"] });
    expect(events).toEqual([{ type: "Warning", reason: "DNSConfigForming", message: expect.stringContaining("Nameserver 10.255.255.53 omitted: not an address of this machine") }]);
  });

  it("Default with only a remote host nameserver: never an empty config (containerd would copy the host file), upstream's no-DNS form", () => {
    const { config, events } = formPodDNS(pod({ dnsPolicy: "Default" }), input({ host: { servers: ["10.255.255.53"], searches: [], options: [] } }));
    expect(config).toEqual({ servers: ["127.0.0.1"], searches: ["."], options: [] });
    expect(events.map((e) => e.reason)).toEqual(["DNSConfigForming"]);
  });

  it("Default with --resolv-conf \"\": nameserver 127.0.0.1, search . (upstream)", () => {
    expect(formPodDNS(pod({ dnsPolicy: "Default" }), input({ host: undefined })).config).toEqual({ servers: ["127.0.0.1"], searches: ["."], options: [] });
  });

  it("hostNetwork: ClusterFirst becomes Default, ClusterFirstWithHostNet keeps the cluster DNS", () => {
    expect(formPodDNS(pod({ hostNetwork: true }), input()).config.servers).toEqual(["127.0.0.53"]);
    expect(formPodDNS(pod({ hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" }), input()).config).toEqual({ servers: ["10.96.0.10"], searches: ["web.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"], options: ["ndots:5"] });
    expect(formPodDNS(pod({ dnsPolicy: "ClusterFirstWithHostNet" }), input()).config.servers).toEqual(["10.96.0.10"]);
  });

  it("None: spec.dnsConfig only", () => {
    const { config, events } = formPodDNS(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["127.0.0.1", "10.96.0.10"], searches: ["my.dns.search.suffix"], options: [{ name: "ndots", value: "2" }, { name: "edns0" }] } }), input());
    expect(config).toEqual({ servers: ["127.0.0.1", "10.96.0.10"], searches: ["my.dns.search.suffix"], options: ["ndots:2", "edns0"] });
    expect(events).toEqual([]);
  });

  it("spec.dnsConfig merges into ClusterFirst: duplicates omitted, an option given again takes the pod's value", () => {
    const { config } = formPodDNS(pod({ dnsConfig: { nameservers: ["10.96.0.10", "127.0.0.2"], searches: ["svc.cluster.local", "extra.example"], options: [{ name: "ndots", value: "1" }, { name: "single-request-reopen" }] } }), input());
    expect(config).toEqual({
      servers: ["10.96.0.10", "127.0.0.2"],
      searches: ["web.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example", "extra.example"],
      options: ["ndots:1", "single-request-reopen"],
    });
  });

  it("a spec.dnsConfig nameserver not on this machine is dropped too", () => {
    const { config, events } = formPodDNS(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["8.8.8.8", "127.0.0.1"] } }), input());
    expect(config.servers).toEqual(["127.0.0.1"]);
    expect(events[0]).toMatchObject({ reason: "DNSConfigForming", message: expect.stringContaining("Nameserver 8.8.8.8 omitted") });
  });

  it("at most 3 nameservers, with a DNSConfigForming warning naming the applied line", () => {
    const { config, events } = formPodDNS(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"] } }), input());
    expect(config.servers).toEqual(["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    expect(events).toEqual([{ type: "Warning", reason: "DNSConfigForming", message: "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 127.0.0.1 127.0.0.2 127.0.0.3" }]);
  });

  it("at most 32 search domains, none over 253 characters, the line at most 2048 characters", () => {
    const many = Array.from({ length: 40 }, (_, i) => `s${i}.example`);
    const r1 = formPodDNS(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["127.0.0.1"], searches: many } }), input());
    expect(r1.config.searches).toEqual(many.slice(0, 32));
    expect(r1.events).toEqual([{ type: "Warning", reason: "DNSConfigForming", message: `Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ${many.slice(0, 32).join(" ")}` }]);

    const long = "a".repeat(254);
    expect(formPodDNS(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["127.0.0.1"], searches: ["ok.example", long] } }), input()).config.searches).toEqual(["ok.example"]);

    const wide = Array.from({ length: 10 }, (_, i) => `${String(i)}${"b".repeat(249)}`); // 10 × 250 + 9 spaces > 2048
    const r3 = formPodDNS(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["127.0.0.1"], searches: wide } }), input());
    expect(r3.config.searches).toEqual(wide.slice(0, 8)); // 8 × 250 + 7 = 2007 ≤ 2048
    expect(r3.events.map((e) => e.reason)).toEqual(["DNSConfigForming"]);

    const fits = Array.from({ length: 32 }, (_, i) => `d${i}.example`);
    expect(formPodDNS(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["127.0.0.1"], searches: fits } }), input()).events).toEqual([]);
  });
});

describe("kubelab kubelet --cluster-dns/--cluster-domain/--resolv-conf", () => {
  it("parses a comma-separated server list and a domain (trailing dot dropped); --resolv-conf defaults to /etc/resolv.conf", async () => {
    const { parseDNSFlags } = await import("../cli/kubelet.ts");
    expect(parseDNSFlags("10.96.0.10, 10.96.0.11", "Cluster.Local.", undefined)).toEqual({ clusterDNS: ["10.96.0.10", "10.96.0.11"], clusterDomain: "cluster.local", resolvConf: "/etc/resolv.conf" });
    expect(parseDNSFlags(undefined, undefined, "")).toEqual({ clusterDNS: [], clusterDomain: "", resolvConf: "" });
    expect(() => parseDNSFlags("10.96.0.300", "cluster.local", undefined)).toThrow(`--cluster-dns: "10.96.0.300" is not an IPv4 address`);
    expect(() => parseDNSFlags("10.96.0.10", "bad_domain", undefined)).toThrow(`--cluster-domain must be a DNS domain like cluster.local, got "bad_domain"`);
  });
});
