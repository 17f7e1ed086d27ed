// pods/log: proxies to the kubelet's /containerLogs endpoint on the pod's node (the kubelet arrives in P4).

import http from "node:http";
import { networkInterfaces } from "node:os";
import type { KubeObject } from "../api/index.ts";
import { errors } from "./errors.ts";
import type { HandlerContext } from "./handlers.ts";

const LOG_PARAMS = ["follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes"];

/** Only addresses on this machine: the apiserver never connects anywhere else (the project's safety rule). */
export function isLocalAddress(ip: string): boolean {
  if (/^127\./.test(ip) || ip === "::1") return true;
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.address === ip) return true;
  return false;
}

export async function proxyPodLog(h: HandlerContext, pod: KubeObject, node: KubeObject | undefined): Promise<void> {
  const spec = (pod.spec ?? {}) as { nodeName?: string; containers?: { name: string }[]; initContainers?: { name: string }[] };
  const name = pod.metadata.name!;
  let container = h.query.get("container") ?? "";
  const all = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].map((c) => c.name);
  if (!container) {
    if ((spec.containers ?? []).length !== 1) {
      throw errors.badRequest(`a container name must be specified for pod ${name}, choose one of: [${(spec.containers ?? []).map((c) => c.name).join(" ")}]`);
    }
    container = spec.containers![0].name;
  } else if (!all.includes(container)) {
    throw errors.badRequest(`container ${container} is not valid for pod ${name}`);
  }
  if (!spec.nodeName) throw errors.badRequest(`pod ${name} does not have a host assigned`);
  if (!node) throw errors.notFound({ group: "", resource: "nodes" }, spec.nodeName);
  const status = (node.status ?? {}) as { addresses?: { type: string; address: string }[]; daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } };
  const address = status.addresses?.find((a) => a.type === "InternalIP")?.address;
  const port = status.daemonEndpoints?.kubeletEndpoint?.Port;
  if (!address || !port) throw errors.serviceUnavailable(`node ${spec.nodeName} has no kubelet endpoint`);
  if (!isLocalAddress(address)) throw errors.badRequest(`refusing to connect to kubelet at ${address}: not an address of this machine`);

  const params = new URLSearchParams();
  for (const p of LOG_PARAMS) {
    const v = h.query.get(p);
    if (v !== null) params.set(p, v);
  }
  const path = `/containerLogs/${encodeURIComponent(pod.metadata.namespace ?? "")}/${encodeURIComponent(name)}/${encodeURIComponent(container)}?${params}`;
  await new Promise<void>((resolve, reject) => {
    const upstream = http.get({ host: address, port, path, signal: h.signal }, (up) => {
      if ((up.statusCode ?? 500) >= 400) {
        let text = "";
        up.setEncoding("utf8");
        up.on("data", (d: string) => (text += d.slice(0, 4096)));
        up.on("end", () => reject(errors.badRequest(text.trim() || `kubelet answered ${up.statusCode}`)));
        return;
      }
      h.res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
      h.res.flushHeaders();
      up.pipe(h.res);
      up.on("end", resolve);
      up.on("error", resolve);
    });
    upstream.on("error", (e) => {
      if (h.res.headersSent) resolve();
      else reject(errors.serviceUnavailable(`cannot reach the kubelet on ${spec.nodeName}: ${e.message}`));
    });
  });
}
