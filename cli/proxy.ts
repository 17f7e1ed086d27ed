// `kubelab proxy`: the service proxy, as kube-proxy runs on every node; here one per zone. Informers
// on Services, EndpointSlices and Nodes feed the Proxier, which listens on ClusterIP:port and
// NodePorts and forwards connections to endpoints.

import { parseArgs } from "node:util";
import { Registry, collectDefaultMetrics } from "prom-client";
import { parseCIDR, type EndpointSlice, type IPv4CIDR, type KubeObject, type Node, type Service } from "../api/index.ts";
import { newEventRecorder, newLogger, newSharedInformerFactory, objectKey, type Context } from "../client/index.ts";
import { INDEX_BY_SERVICE, indexSliceByService, sliceServiceKey } from "../proxy/endpoints.ts";
import { Proxier, ProxyMetrics } from "../proxy/service/index.ts";
import { clientFromKubeconfig, parseDuration, serveHealth } from "./component.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab proxy --kubeconfig FILE [flags]

Forwards TCP and UDP connections for Services: on ClusterIP:port while a Service port has ready
endpoints (none: no listener, so connections are refused), and on NodePorts of this zone's node
addresses and 127.0.0.1. Round-robin, skipping endpoints that refuse; sessionAffinity ClientIP;
internal/externalTrafficPolicy Local; topology hints for --zone.

  --kubeconfig FILE            how to reach the apiserver
  --zone Z                     this proxy's zone: NodePorts on its nodes, hints for it (default: all nodes)
  --healthz-port P             /healthz, /readyz and /metrics on 127.0.0.1:P (default 10256; 0 picks one)
  --service-interface IFACE    put each ClusterIP on IFACE as a /32 before listening (as IPVS mode's kube-ipvs0)
  --nodeport-addresses CIDRS   comma-separated; NodePorts only on node addresses inside them (default: all)
  --sync-period D              full resync at least this often (default 30s)
  --min-sync-period D          at most one sync per D (default 250ms)

Where an address is held by another proxy on this host, this one stands by and takes over when it
is freed (checked every second).`;

function portFlag(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new CliError(`--${flag} must be a port number (0-65535), got "${v}"`, 2);
  return n;
}

export async function runProxy(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      zone: { type: "string" },
      "healthz-port": { type: "string", default: "10256" },
      "service-interface": { type: "string" },
      "nodeport-addresses": { type: "string" },
      "sync-period": { type: "string", default: "30s" },
      "min-sync-period": { type: "string", default: "250ms" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return;
  }
  if (!values.kubeconfig) throw new CliError("--kubeconfig is required", 2);
  const healthPort = portFlag("healthz-port", values["healthz-port"]!);
  const syncPeriodMs = parseDuration("sync-period", values["sync-period"]!);
  const minSyncPeriodMs = parseDuration("min-sync-period", values["min-sync-period"]!);
  if (syncPeriodMs <= 0) throw new CliError(`--sync-period must be positive, got "${values["sync-period"]}"`, 2);
  if (minSyncPeriodMs > syncPeriodMs) throw new CliError(`--min-sync-period (${values["min-sync-period"]}) must not exceed --sync-period (${values["sync-period"]})`, 2);
  const iface = values["service-interface"];
  if (iface !== undefined && !/^[A-Za-z0-9_.:-]{1,15}$/.test(iface)) throw new CliError(`--service-interface must be an interface name (at most 15 characters), got "${iface}"`, 2);
  let nodePortAddresses: IPv4CIDR[] | undefined;
  if (values["nodeport-addresses"] !== undefined) {
    nodePortAddresses = values["nodeport-addresses"].split(",").map((c) => {
      const p = parseCIDR(c.trim());
      if (!p) throw new CliError(`--nodeport-addresses: "${c}" is not an IPv4 CIDR like 127.0.0.0/8`, 2);
      return p;
    });
  }
  const zone = values.zone;
  if (zone !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(zone)) throw new CliError(`--zone must be a label value like local-1a, got "${zone}"`, 2);

  const log = newLogger("proxy");
  const client = clientFromKubeconfig(values.kubeconfig);
  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  const factory = newSharedInformerFactory(client);
  const services = factory.informer<Service>("", "services");
  const slices = factory.informer<EndpointSlice>("discovery.k8s.io", "endpointslices");
  const nodes = factory.informer<Node>("", "nodes");
  slices.addIndexer(INDEX_BY_SERVICE, indexSliceByService);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const recorder = newEventRecorder(client, { component: "kube-proxy", host: zone ? `proxy-${zone}` : undefined, log });
  const proxier = new Proxier({
    services: services.lister,
    endpointSlices: slices.lister,
    nodes: nodes.lister,
    zone,
    nodePortAddresses,
    serviceInterface: iface,
    recorder,
    log,
    metrics: new ProxyMetrics(registry),
    syncPeriodMs,
    minSyncPeriodMs,
  });
  // Handlers only record what changed; the runner does the work.
  const track = (t: { update(k: string): void }, keyOf: (o: Readonly<KubeObject>) => string | undefined) => ({
    onAdd: (o: Readonly<KubeObject>) => t.update(keyOf(o) ?? ""),
    onUpdate: (_: Readonly<KubeObject>, o: Readonly<KubeObject>) => t.update(keyOf(o) ?? ""),
    onDelete: (o: Readonly<KubeObject>) => t.update(keyOf(o) ?? ""),
  });
  services.addEventHandler(track(proxier.serviceChanges, (o) => objectKey(o)));
  slices.addEventHandler(track(proxier.endpointsChanges, (o) => sliceServiceKey(o as EndpointSlice)));
  // Nodes change addresses, zones and podCIDRs: a full sync as for any change.
  nodes.addEventHandler(track(proxier.serviceChanges, () => "nodes"));

  let informersSynced = false;
  let health;
  try {
    health = await serveHealth(healthPort, registry, () => informersSynced && proxier.ready(), log, "informers not synced or rules not programmed yet");
  } catch (e) {
    throw new CliError(`cannot serve /healthz on 127.0.0.1:${healthPort}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }

  const shutdown = () => stop.abort();
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  factory.start(ctx);
  let loop: Promise<void> = Promise.resolve();
  try {
    await factory.waitForCacheSync(stop.signal);
    informersSynced = true;
    log.info({ zone, serviceInterface: iface }, "informers synced");
    loop = proxier.runner.loop(stop.signal);
  } catch {
    // Aborted before the first list: shut down below.
  }
  await new Promise<void>((r) => (stop.signal.aborted ? r() : stop.signal.addEventListener("abort", () => r(), { once: true })));
  await loop;
  proxier.close();
  health.close();
  const flushed = recorder.flush();
  await Promise.race([flushed, new Promise((r) => setTimeout(r, 2000).unref())]);
  process.exit(0);
}
