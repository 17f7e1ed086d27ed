// The data plane `kubelab up` runs next to the nodes: a service proxy per zone (as kube-proxy runs on
// every node), cluster DNS behind the kube-dns Service, and the ingress controller (which is also the
// simulated cloud's LoadBalancer). Like their upstream counterparts they run only where there are
// nodes: with --nodes-per-zone 0 there is nothing to route to.

import http from "node:http";
import { join } from "node:path";
import { formatIPv4, parseCIDR } from "../api/index.ts";
import type { Supervisor } from "./supervisor.ts";
import { CliError } from "./errors.ts";

/** Where `up` publishes the data plane (kept in up.json for `kubelab status`). */
export interface DataPlaneState {
  ingressHTTP: string;
  ingressHTTPS: string;
  /** The kube-dns ClusterIP the kubelets put in pods' resolv.conf. */
  dnsServiceIP: string;
  /** Where the DNS server itself listens (the kube-dns Service's endpoint). */
  dnsEndpoint: string;
  clusterDomain: string;
  /** The components' /readyz ports, for waitDataPlaneReady. */
  healthPorts: number[];
}

export interface DataPlaneOptions {
  dataDir: string;
  kubeconfig: string;
  /** The kubeconfig of one component (with up --chaos: its own, through its fault-proxy link); default `kubeconfig`. */
  kubeconfigFor?: (component: string) => Promise<string>;
  /** Extra flags for the ingress controller (up --fast: per-try timeout and passive health checks). */
  ingressFlags?: string[];
  zones: string[];
  runtime: "sim" | "containerd";
  serviceCIDR: string;
  ingressHTTPPort: number;
  ingressHTTPSPort: number;
  clusterDomain: string;
  /** The containerd host's dummy interface for ClusterIPs (containerd mode only). */
  serviceInterface?: string;
  freePort: () => Promise<number>;
}

/** The simulated runtime's default service range: loopback, so the host reaches every ClusterIP directly. */
export const SIM_SERVICE_CIDR = "127.10.0.0/16";
/** containerd mode: upstream's range, blackholed except the ClusterIPs the proxy puts on the dummy interface. */
export const CONTAINERD_SERVICE_CIDR = "10.96.0.0/16";

/** The kube-dns ClusterIP: the range's 10th address, as kubeadm and EKS choose it (10.96.0.10, 172.20.0.10). */
export function dnsServiceIP(serviceCIDR: string): string {
  const c = parseCIDR(serviceCIDR);
  if (!c || c.prefix > 28) throw new CliError(`--service-cluster-ip-range ${serviceCIDR} is too small for the kube-dns address (.10)`, 2);
  return formatIPv4(c.network + 10);
}

export async function startDataPlane(sup: Supervisor, o: DataPlaneOptions): Promise<DataPlaneState> {
  const logs = join(o.dataDir, "logs");
  const kc = (component: string) => o.kubeconfigFor?.(component) ?? Promise.resolve(o.kubeconfig);
  const healthPorts: number[] = [];
  for (const zone of o.zones) {
    const healthPort = await o.freePort();
    healthPorts.push(healthPort);
    sup.start({
      name: `proxy-${zone}`,
      zone,
      healthPort,
      logFile: join(logs, `proxy-${zone}.log`),
      args: [
        "proxy", "--kubeconfig", await kc(`proxy-${zone}`), "--zone", zone, "--healthz-port", String(healthPort),
        ...(o.serviceInterface ? ["--service-interface", o.serviceInterface] : []),
      ],
    });
  }
  const dnsIP = dnsServiceIP(o.serviceCIDR);
  const [dnsPort, dnsHealth] = [await o.freePort(), await o.freePort()];
  sup.start({
    name: "dns",
    zone: o.zones[0],
    healthPort: dnsHealth,
    logFile: join(logs, "dns.log"),
    args: [
      "dns", "--kubeconfig", await kc("dns"), "--bind", "127.0.0.1", "--dns-port", String(dnsPort),
      "--service-ip", dnsIP, "--cluster-domain", o.clusterDomain, "--healthz-port", String(dnsHealth),
      "--zone", o.zones[0], "--name", "dns",
    ],
  });
  const ingressHealth = await o.freePort();
  healthPorts.push(dnsHealth, ingressHealth);
  sup.start({
    name: "ingress",
    zone: o.zones[0],
    healthPort: ingressHealth,
    logFile: join(logs, "ingress.log"),
    args: [
      "ingress", "--kubeconfig", await kc("ingress"), "--bind", "127.0.0.1",
      "--http-port", String(o.ingressHTTPPort), "--https-port", String(o.ingressHTTPSPort),
      "--healthz-port", String(ingressHealth),
      ...(o.ingressFlags ?? []),
    ],
  });
  return {
    ingressHTTP: `http://127.0.0.1:${o.ingressHTTPPort}`,
    ingressHTTPS: `https://127.0.0.1:${o.ingressHTTPSPort}`,
    dnsServiceIP: dnsIP,
    dnsEndpoint: `127.0.0.1:${dnsPort}`,
    clusterDomain: o.clusterDomain,
    healthPorts,
  };
}

function readyz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/readyz", timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

/**
 * Waits until every data-plane component answers /readyz (its caches synced, the first rules or
 * table in place, the IngressClass and kube-dns Service made), so that what `up` prints works as
 * soon as it is printed. Returns the ports still not ready when `timeoutMs` ran out.
 */
export async function waitDataPlaneReady(state: DataPlaneState, timeoutMs: number, stopped: () => boolean): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let pending = state.healthPorts;
  while (pending.length > 0 && Date.now() < deadline && !stopped()) {
    const ok = await Promise.all(pending.map(readyz));
    pending = pending.filter((_, i) => !ok[i]);
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 200));
  }
  return pending;
}
