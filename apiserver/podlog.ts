// pods/log: proxies to the kubelet's /containerLogs endpoint on the pod's node.

import http from "node:http";
import type { KubeObject } from "../api/index.ts";
import { isLocalAddress } from "../client/index.ts";
import { errors } from "./errors.ts";
import type { HandlerContext } from "./handlers.ts";

const LOG_PARAMS = ["follow", "previous", "timestamps", "tailLines", "sinceSeconds", "sinceTime", "limitBytes"];

/** The container a pods/log or pods/exec request is for: the named one, or the pod's only container. */
export function resolveContainer(pod: KubeObject, requested: string): string {
  const spec = (pod.spec ?? {}) as { containers?: { name: string }[]; initContainers?: { name: string }[] };
  const name = pod.metadata.name!;
  const all = [...(spec.containers ?? []), ...(spec.initContainers ?? [])].map((c) => c.name);
  if (!requested) {
    if ((spec.containers ?? []).length !== 1) {
      throw errors.badRequest(`a container name must be specified for pod ${name}, choose one of: [${(spec.containers ?? []).map((c) => c.name).join(" ")}]`);
    }
    return spec.containers![0].name;
  }
  if (!all.includes(requested)) throw errors.badRequest(`container ${requested} is not valid for pod ${name}`);
  return requested;
}

/** The kubelet serving the pod's node: its InternalIP and port, refused unless the address is on this machine. */
export function kubeletEndpoint(pod: KubeObject, node: KubeObject | undefined): { address: string; port: number; nodeName: string } {
  const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
  if (!nodeName) throw errors.badRequest(`pod ${pod.metadata.name} does not have a host assigned`);
  if (!node) throw errors.notFound({ group: "", resource: "nodes" }, nodeName);
  const status = (node.status ?? {}) as { addresses?: { type: string; address: string }[]; daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } };
  const address = status.addresses?.find((a) => a.type === "InternalIP")?.address;
  const port = status.daemonEndpoints?.kubeletEndpoint?.Port;
  if (!address || !port) throw errors.serviceUnavailable(`node ${nodeName} has no kubelet endpoint`);
  if (!isLocalAddress(address)) throw errors.badRequest(`refusing to connect to kubelet at ${address}: not an address of this machine`);
  return { address, port, nodeName };
}

export async function proxyPodLog(h: HandlerContext, pod: KubeObject, node: KubeObject | undefined): Promise<void> {
  const name = pod.metadata.name!;
  const container = resolveContainer(pod, h.query.get("container") ?? "");
  const { address, port, nodeName } = kubeletEndpoint(pod, node);

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
      else reject(errors.serviceUnavailable(`cannot reach the kubelet on ${nodeName}: ${e.message}`));
    });
  });
}
