import { describe, expect, it } from "vitest";
import { findResource, RESOURCES, type ResourceInfo } from "../api/resources.ts";
import { humanDuration, tableColumns, tableRow, toTable } from "./tables.ts";

const NOW = new Date("2025-01-01T12:00:00Z");
/** An RFC 3339 timestamp `s` seconds before NOW. */
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString().replace(/\.000Z$/, "Z");

function res(group: string, resource: string): ResourceInfo {
  const info = findResource(group, "v1", resource);
  if (!info) throw new Error(`no resource ${group}/${resource}`);
  return info;
}
const pods = res("", "pods");
const cells = (info: ResourceInfo, o: Record<string, unknown>) => tableRow(info, o, NOW).cells;

describe("humanDuration", () => {
  it.each([
    [-5_000, "<invalid>"],
    [-1_500, "0s"],
    [0, "0s"],
    [5_000, "5s"],
    [119_999, "119s"],
    [120_000, "2m"],
    [123_000, "2m3s"],
    [599_000, "9m59s"],
    [600_000, "10m"],
    [179 * 60_000, "179m"],
    [3 * 3600_000, "3h"],
    [3 * 3600_000 + 4 * 60_000, "3h4m"],
    [8 * 3600_000 + 30 * 60_000, "8h"],
    [47 * 3600_000, "47h"],
    [48 * 3600_000, "2d"],
    [76 * 3600_000, "3d4h"],
    [8 * 86400_000, "8d"],
    [729 * 86400_000, "729d"],
    [730 * 86400_000, "2y"],
    [740 * 86400_000, "2y10d"],
    [9 * 365 * 86400_000, "9y"],
  ])("%d ms is %s", (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });
});

describe("pod rows", () => {
  it("a running pod with two containers and restarts shows READY 2/2 and when it last restarted", () => {
    const pod = {
      metadata: { name: "web-1", namespace: "default", creationTimestamp: ago(3600) },
      spec: { nodeName: "node-a", containers: [{ name: "a" }, { name: "b" }] },
      status: {
        phase: "Running",
        podIP: "10.0.0.5",
        podIPs: [{ ip: "10.0.0.5" }],
        conditions: [{ type: "Ready", status: "True" }],
        containerStatuses: [
          { name: "a", ready: true, restartCount: 2, state: { running: {} }, lastState: { terminated: { finishedAt: ago(300) } } },
          { name: "b", ready: true, restartCount: 1, state: { running: {} }, lastState: { terminated: { finishedAt: ago(900) } } },
        ],
      },
    };
    expect(cells(pods, pod)).toEqual(["web-1", "2/2", "Running", "3 (5m ago)", "60m", "10.0.0.5", "node-a", "<none>", "<none>"]);
  });

  it("a pod in CrashLoopBackOff shows the waiting reason and is not ready", () => {
    const pod = {
      metadata: { name: "crash", creationTimestamp: ago(90) },
      spec: { containers: [{ name: "a" }] },
      status: {
        phase: "Running",
        containerStatuses: [
          {
            name: "a",
            ready: false,
            restartCount: 4,
            state: { waiting: { reason: "CrashLoopBackOff", message: "back-off 40s" } },
            lastState: { terminated: { exitCode: 1, reason: "Error", finishedAt: ago(20) } },
          },
        ],
      },
    };
    expect(cells(pods, pod).slice(0, 5)).toEqual(["crash", "0/1", "CrashLoopBackOff", "4 (20s ago)", "90s"]);
  });

  it("a pod with a deletionTimestamp is Terminating", () => {
    const pod = {
      metadata: { name: "bye", creationTimestamp: ago(600), deletionTimestamp: ago(-30) },
      spec: { containers: [{ name: "a" }] },
      status: { phase: "Running", containerStatuses: [{ name: "a", ready: true, restartCount: 0, state: { running: {} } }] },
    };
    expect(cells(pods, pod).slice(0, 5)).toEqual(["bye", "1/1", "Terminating", "0", "10m"]);
  });

  it("a deleted pod on a lost node is Unknown, a finished one keeps its reason", () => {
    const lost = {
      metadata: { name: "lost", creationTimestamp: ago(60), deletionTimestamp: ago(1) },
      spec: { containers: [{ name: "a" }] },
      status: { phase: "Running", reason: "NodeLost" },
    };
    expect(cells(pods, lost)[2]).toBe("Unknown");
    const done = {
      metadata: { name: "done", creationTimestamp: ago(60), deletionTimestamp: ago(1) },
      spec: { containers: [{ name: "a" }] },
      status: { phase: "Succeeded", containerStatuses: [{ name: "a", state: { terminated: { exitCode: 0, reason: "Completed" } } }] },
    };
    expect(cells(pods, done)[2]).toBe("Completed");
  });

  it("a succeeded pod shows Completed and carries the Completed row condition", () => {
    const pod = {
      metadata: { name: "job-x", creationTimestamp: ago(60) },
      spec: { containers: [{ name: "a" }] },
      status: { phase: "Succeeded", containerStatuses: [{ name: "a", ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: "Completed" } } }] },
    };
    const row = tableRow(pods, pod, NOW);
    expect(row.cells.slice(0, 4)).toEqual(["job-x", "0/1", "Completed", "0"]);
    expect(row.conditions).toEqual([{ type: "Completed", status: "True", reason: "Succeeded", message: "The pod has completed successfully." }]);
  });

  it("init containers: Init:x/y while running, Init:<reason> when failing, ExitCode without a reason", () => {
    const base = { metadata: { name: "init", creationTimestamp: ago(10) }, spec: { initContainers: [{ name: "i1" }, { name: "i2" }], containers: [{ name: "a" }] } };
    const running = {
      ...base,
      status: {
        phase: "Pending",
        initContainerStatuses: [
          { name: "i1", restartCount: 0, state: { terminated: { exitCode: 0 } } },
          { name: "i2", restartCount: 0, state: { running: {} } },
        ],
        containerStatuses: [{ name: "a", ready: false, restartCount: 0, state: { waiting: { reason: "PodInitializing" } } }],
      },
    };
    expect(cells(pods, running)[2]).toBe("Init:1/2");
    const crashing = {
      ...base,
      status: { phase: "Pending", initContainerStatuses: [{ name: "i1", restartCount: 3, state: { waiting: { reason: "CrashLoopBackOff" } } }] },
    };
    expect(cells(pods, crashing).slice(2, 4)).toEqual(["Init:CrashLoopBackOff", "3"]);
    const failed = {
      ...base,
      status: { phase: "Failed", initContainerStatuses: [{ name: "i1", restartCount: 0, state: { terminated: { exitCode: 2 } } }] },
    };
    expect(cells(pods, failed)[2]).toBe("Init:ExitCode:2");
  });

  it("sidecar (restartable init) containers count towards READY", () => {
    const pod = {
      metadata: { name: "side", creationTimestamp: ago(10) },
      spec: { initContainers: [{ name: "proxy", restartPolicy: "Always" }], containers: [{ name: "a" }] },
      status: {
        phase: "Running",
        conditions: [{ type: "Initialized", status: "True" }],
        initContainerStatuses: [{ name: "proxy", ready: true, started: true, restartCount: 1, state: { running: {} } }],
        containerStatuses: [{ name: "a", ready: true, restartCount: 0, state: { running: {} } }],
      },
    };
    expect(cells(pods, pod).slice(1, 4)).toEqual(["2/2", "Running", "1"]);
  });

  it("a pending unscheduled pod shows <none> for wide columns and readiness gates as true/total", () => {
    const pod = {
      metadata: { name: "p", creationTimestamp: ago(5) },
      spec: { containers: [{ name: "a" }], readinessGates: [{ conditionType: "x/ready" }, { conditionType: "y/ready" }] },
      status: { phase: "Pending", conditions: [{ type: "x/ready", status: "True" }] },
    };
    expect(cells(pods, pod)).toEqual(["p", "0/1", "Pending", "0", "5s", "<none>", "<none>", "<none>", "1/2"]);
  });
});

describe("workload rows", () => {
  const template = { spec: { containers: [{ name: "web", image: "nginx:1.27" }, { name: "log", image: "busybox" }] } };

  it("deployment", () => {
    const d = {
      metadata: { name: "web", creationTimestamp: ago(3 * 86400) },
      spec: { replicas: 3, selector: { matchLabels: { app: "web", tier: "fe" } }, template },
      status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 },
    };
    expect(cells(res("apps", "deployments"), d)).toEqual(["web", "2/3", 3, 2, "3d", "web,log", "nginx:1.27,busybox", "app=web,tier=fe"]);
  });

  it("replicaset with a set-based selector", () => {
    const rs = {
      metadata: { name: "web-abc", creationTimestamp: ago(30) },
      spec: { replicas: 2, selector: { matchLabels: { app: "web" }, matchExpressions: [{ key: "env", operator: "In", values: ["prod", "dev"] }] }, template },
      status: { replicas: 2, readyReplicas: 1 },
    };
    expect(cells(res("apps", "replicasets"), rs)).toEqual(["web-abc", 2, 2, 1, "30s", "web,log", "nginx:1.27,busybox", "app=web,env in (dev,prod)"]);
  });

  it("a completed job shows Complete, completions and its duration", () => {
    const job = {
      metadata: { name: "pi", creationTimestamp: ago(600) },
      spec: { completions: 3, parallelism: 1, selector: { matchLabels: { "batch.kubernetes.io/controller-uid": "u1" } }, template },
      status: {
        succeeded: 3,
        startTime: ago(590),
        completionTime: ago(545),
        conditions: [
          { type: "SuccessCriteriaMet", status: "True" },
          { type: "Complete", status: "True" },
        ],
      },
    };
    expect(cells(res("batch", "jobs"), job)).toEqual([
      "pi",
      "Complete",
      "3/3",
      "45s",
      "10m",
      "web,log",
      "nginx:1.27,busybox",
      "batch.kubernetes.io/controller-uid=u1",
    ]);
  });

  it("job status: Running with elapsed duration, Failed, Suspended, and 0/1 of N for parallel work queues", () => {
    const jobs = res("batch", "jobs");
    const running = { metadata: { name: "j", creationTimestamp: ago(100) }, spec: { parallelism: 4, template }, status: { startTime: ago(100) } };
    expect(cells(jobs, running).slice(1, 4)).toEqual(["Running", "0/1 of 4", "100s"]);
    const failed = { metadata: { name: "j", creationTimestamp: ago(100) }, spec: { completions: 1, template }, status: { conditions: [{ type: "Failed", status: "True" }] } };
    expect(cells(jobs, failed).slice(1, 4)).toEqual(["Failed", "0/1", ""]);
    const suspended = { metadata: { name: "j", creationTimestamp: ago(100) }, spec: { template }, status: { conditions: [{ type: "Suspended", status: "True" }] } };
    expect(cells(jobs, suspended).slice(1, 3)).toEqual(["Suspended", "0/1"]);
  });
});

describe("node rows", () => {
  it("a NotReady, cordoned node with a role and addresses", () => {
    const node = {
      metadata: {
        name: "node-a",
        creationTimestamp: ago(86400 * 10),
        labels: { "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "etcd", "kubernetes.io/hostname": "node-a" },
      },
      spec: { unschedulable: true },
      status: {
        conditions: [
          { type: "MemoryPressure", status: "False" },
          { type: "Ready", status: "False" },
        ],
        addresses: [
          { type: "Hostname", address: "node-a" },
          { type: "InternalIP", address: "192.168.1.10" },
        ],
        nodeInfo: { kubeletVersion: "v1.32.4", osImage: "kubelab", kernelVersion: "6.1.0", containerRuntimeVersion: "containerd://1.7.0" },
      },
    };
    expect(cells(res("", "nodes"), node)).toEqual([
      "node-a",
      "NotReady,SchedulingDisabled",
      "control-plane,etcd",
      "10d",
      "v1.32.4",
      "192.168.1.10",
      "<none>",
      "kubelab",
      "6.1.0",
      "containerd://1.7.0",
    ]);
  });

  it("a node without a Ready condition is Unknown and has no roles", () => {
    const node = { metadata: { name: "n", creationTimestamp: ago(5) }, spec: {}, status: {} };
    expect(cells(res("", "nodes"), node).slice(0, 3)).toEqual(["n", "Unknown", "<none>"]);
  });
});

describe("service rows", () => {
  const services = res("", "services");
  it("a NodePort service", () => {
    const svc = {
      metadata: { name: "web", creationTimestamp: ago(120) },
      spec: {
        type: "NodePort",
        clusterIP: "10.96.0.20",
        clusterIPs: ["10.96.0.20"],
        selector: { app: "web" },
        ports: [
          { port: 80, targetPort: 8080, nodePort: 30080, protocol: "TCP" },
          { port: 53, nodePort: 30053, protocol: "UDP" },
        ],
      },
    };
    expect(cells(services, svc)).toEqual(["web", "NodePort", "10.96.0.20", "<none>", "80:30080/TCP,53:30053/UDP", "2m", "app=web"]);
  });

  it("ClusterIP without ports, LoadBalancer pending and with ingress, ExternalName", () => {
    const cip = { metadata: { name: "h", creationTimestamp: ago(1) }, spec: { type: "ClusterIP", clusterIPs: ["None"] } };
    expect(cells(services, cip)).toEqual(["h", "ClusterIP", "None", "<none>", "<none>", "1s", "<none>"]);
    const lb = { metadata: { name: "lb", creationTimestamp: ago(1) }, spec: { type: "LoadBalancer", clusterIPs: ["10.96.0.9"], ports: [{ port: 443 }] } };
    expect(cells(services, lb).slice(3, 5)).toEqual(["<pending>", "443/TCP"]);
    const lb2 = { ...lb, status: { loadBalancer: { ingress: [{ ip: "203.0.113.9" }, { hostname: "lb.example" }] } } };
    expect(cells(services, lb2)[3]).toBe("203.0.113.9,lb.example");
    const ext = { metadata: { name: "x", creationTimestamp: ago(1) }, spec: { type: "ExternalName", externalName: "db.example.com" } };
    expect(cells(services, ext).slice(1, 4)).toEqual(["ExternalName", "<none>", "db.example.com"]);
  });
});

describe("other rows", () => {
  it("events: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, then the wide columns", () => {
    const ev = {
      metadata: { name: "web-1.17f", namespace: "default", creationTimestamp: ago(300) },
      involvedObject: { kind: "Pod", name: "web-1", fieldPath: "spec.containers{a}" },
      reason: "BackOff",
      message: "Back-off restarting failed container\n",
      type: "Warning",
      source: { component: "kubelet", host: "node-a" },
      firstTimestamp: ago(300),
      lastTimestamp: ago(10),
      count: 7,
    };
    const events = res("", "events");
    expect(tableColumns(events).map((c) => [c.name, c.priority])).toEqual([
      ["Last Seen", 0],
      ["Type", 0],
      ["Reason", 0],
      ["Object", 0],
      ["Subobject", 1],
      ["Source", 1],
      ["Message", 0],
      ["First Seen", 1],
      ["Count", 1],
      ["Name", 1],
    ]);
    expect(cells(events, ev)).toEqual([
      "10s",
      "Warning",
      "BackOff",
      "pod/web-1",
      "spec.containers{a}",
      "kubelet, node-a",
      "Back-off restarting failed container",
      "5m",
      7,
      "web-1.17f",
    ]);
    const newStyle = { metadata: { name: "e2" }, involvedObject: { kind: "Node" }, eventTime: ago(3), reportingController: "scheduler", type: "Normal", reason: "R", message: "m" };
    expect(cells(events, newStyle)).toEqual(["3s", "Normal", "R", "node", "", "scheduler", "m", "3s", 1, "e2"]);
  });

  it("namespaces, configmaps, secrets, serviceaccounts, leases", () => {
    expect(cells(res("", "namespaces"), { metadata: { name: "default", creationTimestamp: ago(60) }, status: { phase: "Active" } })).toEqual(["default", "Active", "60s"]);
    expect(cells(res("", "configmaps"), { metadata: { name: "c", creationTimestamp: ago(1) }, data: { a: "1", b: "2" }, binaryData: { c: "AA==" } })).toEqual(["c", 3, "1s"]);
    expect(cells(res("", "secrets"), { metadata: { name: "s", creationTimestamp: ago(1) }, type: "Opaque", data: { a: "MQ==" } })).toEqual(["s", "Opaque", 1, "1s"]);
    expect(cells(res("", "serviceaccounts"), { metadata: { name: "default", creationTimestamp: ago(1) } })).toEqual(["default", 0, "1s"]);
    expect(cells(res("coordination.k8s.io", "leases"), { metadata: { name: "node-a", creationTimestamp: ago(1) }, spec: { holderIdentity: "node-a" } })).toEqual(["node-a", "node-a", "1s"]);
  });

  it("endpoints list at most three addresses", () => {
    const ep = {
      metadata: { name: "web", creationTimestamp: ago(1) },
      subsets: [{ addresses: [{ ip: "10.0.0.1" }, { ip: "10.0.0.2" }, { ip: "10.0.0.3" }, { ip: "10.0.0.4" }], ports: [{ port: 8080 }] }],
    };
    expect(cells(res("", "endpoints"), ep)).toEqual(["web", "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more...", "1s"]);
    expect(cells(res("", "endpoints"), { metadata: { name: "e", creationTimestamp: ago(1) } })[1]).toBe("<none>");
  });

  it("ingresses, ingressclasses, endpointslices, storageclasses", () => {
    const ing = {
      metadata: { name: "ing", creationTimestamp: ago(1) },
      spec: { ingressClassName: "kubelab", rules: [{ host: "a.example" }, { host: "b.example" }], tls: [{ hosts: ["a.example"] }] },
      status: { loadBalancer: { ingress: [{ ip: "127.0.0.1" }] } },
    };
    expect(cells(res("networking.k8s.io", "ingresses"), ing)).toEqual(["ing", "kubelab", "a.example,b.example", "127.0.0.1", "80, 443", "1s"]);
    const cls = { metadata: { name: "kubelab", creationTimestamp: ago(1) }, spec: { controller: "kubelab.dev/ingress" } };
    expect(cells(res("networking.k8s.io", "ingressclasses"), cls)).toEqual(["kubelab", "kubelab.dev/ingress", "<none>", "1s"]);
    const slice = {
      metadata: { name: "web-x", creationTimestamp: ago(1) },
      addressType: "IPv4",
      ports: [{ port: 8080, name: "http" }],
      endpoints: [{ addresses: ["10.0.0.1"] }, { addresses: ["10.0.0.2"] }],
    };
    expect(cells(res("discovery.k8s.io", "endpointslices"), slice)).toEqual(["web-x", "IPv4", "8080", "10.0.0.1,10.0.0.2", "1s"]);
    expect(cells(res("discovery.k8s.io", "endpointslices"), { metadata: { name: "e", creationTimestamp: ago(1) }, addressType: "IPv4" }).slice(2, 4)).toEqual(["<unset>", "<unset>"]);
    const sc = { metadata: { name: "standard", creationTimestamp: ago(1), annotations: { "storageclass.kubernetes.io/is-default-class": "true" } }, provisioner: "kubelab.dev/hostpath" };
    expect(cells(res("storage.k8s.io", "storageclasses"), sc)).toEqual(["standard (default)", "kubelab.dev/hostpath", "Delete", "Immediate", false, "1s"]);
  });

  it("persistent volumes and claims", () => {
    const pv = {
      metadata: { name: "pv1", creationTimestamp: ago(1) },
      spec: { capacity: { storage: "1Gi" }, accessModes: ["ReadWriteMany", "ReadWriteOnce"], persistentVolumeReclaimPolicy: "Retain", claimRef: { namespace: "default", name: "data" }, storageClassName: "standard", volumeMode: "Filesystem" },
      status: { phase: "Bound" },
    };
    expect(cells(res("", "persistentvolumes"), pv)).toEqual(["pv1", "1Gi", "RWO,RWX", "Retain", "Bound", "default/data", "standard", "<unset>", "", "1s", "Filesystem"]);
    const pending = { metadata: { name: "data", creationTimestamp: ago(1) }, spec: { resources: { requests: { storage: "1Gi" } }, storageClassName: "standard" }, status: { phase: "Pending" } };
    expect(cells(res("", "persistentvolumeclaims"), pending)).toEqual(["data", "Pending", "", "", "", "standard", "<unset>", "1s", "<unset>"]);
    const bound = { ...pending, spec: { ...pending.spec, volumeName: "pv1" }, status: { phase: "Bound", capacity: { storage: "1Gi" }, accessModes: ["ReadWriteOnce"] } };
    expect(cells(res("", "persistentvolumeclaims"), bound).slice(1, 5)).toEqual(["Bound", "pv1", "1Gi", "RWO"]);
  });

  it("an unknown resource gets the default convertor's Name and Created At", () => {
    const info: ResourceInfo = { ...pods, group: "example.com", resource: "widgets", kind: "Widget", listKind: "WidgetList" };
    expect(tableColumns(info).map((c) => [c.name, c.type, c.format])).toEqual([
      ["Name", "string", "name"],
      ["Created At", "date", ""],
    ]);
    expect(cells(info, { metadata: { name: "w", creationTimestamp: "2024-05-01T10:00:00Z" } })).toEqual(["w", "2024-05-01T10:00:00Z"]);
  });
});

describe("rbac and certificates rows", () => {
  const rbac = (resource: string) => res("rbac.authorization.k8s.io", resource);
  it("roles and clusterroles print NAME and CREATED AT in RFC3339", () => {
    for (const r of ["roles", "clusterroles"]) {
      expect(tableColumns(rbac(r)).map((c) => c.name)).toEqual(["Name", "Created At"]);
      expect(cells(rbac(r), { metadata: { name: "pod-reader", creationTimestamp: ago(90) } })).toEqual(["pod-reader", "2025-01-01T11:58:30Z"]);
    }
  });

  it("bindings print ROLE as Kind/name, AGE, and the subjects by kind in the wide columns", () => {
    for (const r of ["rolebindings", "clusterrolebindings"]) {
      expect(tableColumns(rbac(r)).map((c) => [c.name, c.priority])).toEqual([
        ["Name", 0], ["Role", 0], ["Age", 0], ["Users", 1], ["Groups", 1], ["ServiceAccounts", 1],
      ]);
    }
    const binding = {
      metadata: { name: "rb", creationTimestamp: ago(120) },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
      subjects: [
        { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "jane" },
        { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "bob" },
        { kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "devs" },
        { kind: "ServiceAccount", name: "builder", namespace: "ci" },
      ],
    };
    expect(cells(rbac("rolebindings"), binding)).toEqual(["rb", "ClusterRole/view", "2m", "jane, bob", "devs", "ci/builder"]);
    expect(cells(rbac("clusterrolebindings"), { ...binding, subjects: undefined })).toEqual(["rb", "ClusterRole/view", "2m", "", "", ""]);
  });

  it("csrs print signer, requestor, requested duration and the condition summary", () => {
    const csrs = res("certificates.k8s.io", "certificatesigningrequests");
    expect(tableColumns(csrs).map((c) => c.name)).toEqual(["Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"]);
    const base = { metadata: { name: "c", creationTimestamp: ago(30) }, spec: { signerName: "kubernetes.io/kube-apiserver-client", username: "jane" } };
    expect(cells(csrs, base)).toEqual(["c", "30s", "kubernetes.io/kube-apiserver-client", "jane", "<none>", "Pending"]);
    expect(cells(csrs, { ...base, spec: { ...base.spec, expirationSeconds: 86400 } })[4]).toBe("24h");
    expect(cells(csrs, { ...base, status: { conditions: [{ type: "Approved", status: "True" }], certificate: "LS0t" } })[5]).toBe("Approved,Issued");
    expect(cells(csrs, { ...base, status: { conditions: [{ type: "Approved", status: "True" }, { type: "Failed", status: "True" }] } })[5]).toBe("Approved,Failed");
    expect(cells(csrs, { ...base, status: { conditions: [{ type: "Denied", status: "True" }] } })[5]).toBe("Denied");
    expect(cells(csrs, { metadata: { name: "c", creationTimestamp: ago(30) }, spec: {} })[2]).toBe("<none>");
  });
});

describe("toTable", () => {
  const pod = {
    metadata: { name: "p", namespace: "default", uid: "u1", labels: { app: "x" }, creationTimestamp: ago(5) },
    spec: { containers: [{ name: "a" }] },
    status: { phase: "Pending" },
  };

  it("returns a meta.k8s.io/v1 Table with upstream column definitions and PartialObjectMetadata rows", () => {
    const t = toTable(pods, [pod], { now: NOW, listMeta: { resourceVersion: "42", continue: "" } });
    expect(t.kind).toBe("Table");
    expect(t.apiVersion).toBe("meta.k8s.io/v1");
    expect(t.metadata).toEqual({ resourceVersion: "42" });
    expect(t.columnDefinitions).toEqual(tableColumns(pods));
    const defs = tableColumns(pods);
    expect(defs.map((c) => c.name)).toEqual(["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]);
    expect(defs.map((c) => c.priority)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expect(defs[0]).toMatchObject({ type: "string", format: "name" });
    expect(defs[0]?.description).toMatch(/^Name must be unique within a namespace/);
    expect(t.rows).toEqual([
      {
        cells: ["p", "0/1", "Pending", "0", "5s", "<none>", "<none>", "<none>", "<none>"],
        object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: pod.metadata },
      },
    ]);
  });

  it("includeObject Object embeds the full object with its kind; None leaves it out; omitHeaders nulls the columns", () => {
    const full = toTable(pods, [pod], { now: NOW, includeObject: "Object" });
    expect((full.rows as { object: unknown }[])[0]?.object).toEqual({ kind: "Pod", apiVersion: "v1", ...pod });
    const none = toTable(pods, [pod], { now: NOW, includeObject: "None", omitHeaders: true });
    expect((none.rows as Record<string, unknown>[])[0]).not.toHaveProperty("object");
    expect(none.columnDefinitions).toBeNull();
  });

  it("resource quotas: used/hard per status.hard resource, sorted, limits.* in the Limit column", () => {
    const q = {
      metadata: { name: "compute", creationTimestamp: ago(120) },
      spec: { hard: { pods: "5", "limits.cpu": "2", "requests.cpu": "1" } },
      status: { hard: { pods: "5", "limits.cpu": "2", "requests.cpu": "1" }, used: { pods: "1", "limits.cpu": "600m" } },
    };
    const info = res("", "resourcequotas");
    expect(tableColumns(info).map((c) => c.name)).toEqual(["Name", "Age", "Request", "Limit"]);
    expect(tableRow(info, q, NOW).cells).toEqual(["compute", "2m", "pods: 1/5, requests.cpu: 0/1", "limits.cpu: 600m/2"]);
  });

  it("every catalogued resource has a row as wide as its column list", () => {
    const minimal = { metadata: { name: "x", creationTimestamp: ago(1) } };
    for (const info of RESOURCES) {
      expect(tableRow(info, minimal, NOW).cells.length, info.resource).toBe(tableColumns(info).length);
      // LimitRange has no printer upstream either, and upstream's role printers have the default columns:
      // kubectl shows NAME and CREATED AT. Create-only reviews are never listed.
      if (!info.verbs.includes("list")) continue;
      expect(tableColumns(info).some((c) => c.name === "Created At"), info.resource).toBe(["limitranges", "roles", "clusterroles"].includes(info.resource));
    }
  });
});
