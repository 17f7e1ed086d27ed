// `kubelab dns`: cluster DNS, as CoreDNS with the kubernetes plugin runs behind the kube-dns Service.
// Informers on Services, EndpointSlices and Namespaces feed the resolver; with --service-ip it also
// keeps the kube-dns Service and its own EndpointSlice, and deletes the slice when it stops.

import { parseArgs } from "node:util";
import { Registry, collectDefaultMetrics } from "prom-client";
import { parseIPv4, type EndpointSlice, type KubeObject, type Namespace, type Service } from "../api/index.ts";
import { newLogger, newSharedInformerFactory, type Context } from "../client/index.ts";
import {
  DnsServer,
  KUBE_DNS_NAMESPACE,
  KUBE_DNS_SERVICE,
  KubeDNSKeeper,
  Resolver,
  dnsIndexers,
  dnsMetrics,
  listerCache,
  sliceName,
} from "../proxy/dns/index.ts";
import { clientFromKubeconfig, serveHealth } from "./component.ts";
import { CliError } from "./errors.ts";

const HELP = `usage: kubelab dns --kubeconfig FILE [flags]

  --kubeconfig FILE        how to reach the apiserver
  --bind ADDR              serve DNS on this IPv4 address (default 127.0.0.1)
  --dns-port P             UDP and TCP port (default 1053; 0 picks one)
  --cluster-domain D       the cluster's DNS domain (default cluster.local)
  --ttl S                  TTL of every answer, 0-3600 seconds (default 5)
  --healthz-port P         /healthz, /readyz and /metrics on 127.0.0.1:P (default 10054; 0 picks one)
  --service-ip IP          keep the Service kube-system/kube-dns on this ClusterIP and publish this
                           server in its EndpointSlice kube-system/kube-dns-NAME (without it: only serve)
  --name NAME              this instance's name, for its EndpointSlice (default dns)
  --zone Z                 topology zone of this instance's endpoint

Names outside the cluster domain and in-addr.arpa are REFUSED: this server never forwards.`;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function portFlag(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new CliError(`--${flag} must be a port number (0-65535), got "${v}"`, 2);
  return n;
}

function ipFlag(flag: string, v: string): string {
  if (parseIPv4(v) === undefined) throw new CliError(`--${flag} must be an IPv4 address, got "${v}"`, 2);
  return v;
}

export async function runDns(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      bind: { type: "string", default: "127.0.0.1" },
      "dns-port": { type: "string", default: "1053" },
      "cluster-domain": { type: "string", default: "cluster.local" },
      ttl: { type: "string", default: "5" },
      "healthz-port": { type: "string", default: "10054" },
      "service-ip": { type: "string" },
      name: { type: "string", default: "dns" },
      zone: { type: "string" },
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
  const bind = ipFlag("bind", values.bind!);
  const dnsPort = portFlag("dns-port", values["dns-port"]!);
  const healthPort = portFlag("healthz-port", values["healthz-port"]!);
  const ttl = Number(values.ttl);
  if (!/^\d+$/.test(values.ttl!) || ttl > 3600) throw new CliError(`--ttl must be whole seconds between 0 and 3600, got "${values.ttl}"`, 2);
  const domain = values["cluster-domain"]!.replace(/\.$/, "").toLowerCase();
  if (domain === "" || domain.length > 253 || !domain.split(".").every((l) => DNS_LABEL.test(l) && l.length <= 63)) {
    throw new CliError(`--cluster-domain must be a DNS domain like cluster.local, got "${values["cluster-domain"]}"`, 2);
  }
  const serviceIP = values["service-ip"] === undefined ? undefined : ipFlag("service-ip", values["service-ip"]);
  const name = values.name!;
  if (!DNS_LABEL.test(name) || sliceName(name).length > 63) throw new CliError(`--name must be a DNS label of at most ${63 - sliceName("").length} characters, got "${name}"`, 2);

  const log = newLogger("dns");
  const client = clientFromKubeconfig(values.kubeconfig);

  const stop = new AbortController();
  const ctx: Context = { signal: stop.signal, log };
  const factory = newSharedInformerFactory(client);
  const services = factory.informer<Service>("", "services");
  const slices = factory.informer<EndpointSlice>("discovery.k8s.io", "endpointslices");
  const namespaces = factory.informer<Namespace>("", "namespaces");
  for (const [n, fn] of Object.entries(dnsIndexers.services)) services.addIndexer(n, fn);
  for (const [n, fn] of Object.entries(dnsIndexers.endpointSlices)) slices.addIndexer(n, fn);
  // The SOA serial: when the cache last changed, in seconds (CoreDNS's dnsController.Modified).
  let modified = Math.floor(Date.now() / 1000);
  const touch = () => (modified = Math.floor(Date.now() / 1000));
  const touching = { onAdd: touch, onUpdate: touch, onDelete: touch };
  services.addEventHandler(touching);
  slices.addEventHandler(touching);
  namespaces.addEventHandler(touching);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = dnsMetrics(registry);
  const cache = listerCache({ services: services.lister, endpointSlices: slices.lister, namespaces: namespaces.lister, serial: () => modified });
  let synced = false;
  const resolver = new Resolver(cache, { domain, ttl, nameserverIPs: [serviceIP ?? (bind === "0.0.0.0" ? "127.0.0.1" : bind)], ready: () => synced });
  const server = new DnsServer({ resolver, log, metrics });
  let port: number;
  try {
    port = await server.listen(bind, dnsPort);
  } catch (e) {
    throw new CliError(`cannot serve DNS on ${bind}:${dnsPort}: ${(e as Error).message}`);
  }
  log.info({ bind, port, domain }, "serving DNS (UDP and TCP)");
  let health;
  try {
    health = await serveHealth(healthPort, registry, () => synced, log, "informers not synced");
  } catch (e) {
    await server.close();
    throw new CliError(`cannot serve /healthz on 127.0.0.1:${healthPort}: ${(e as Error).message}`);
  }

  let keeper: KubeDNSKeeper | undefined;
  if (serviceIP) {
    keeper = new KubeDNSKeeper({
      client,
      services: services.lister,
      endpointSlices: slices.lister,
      serviceIP,
      address: bind === "0.0.0.0" ? "127.0.0.1" : bind,
      port,
      name,
      zone: values.zone,
    });
    const ours = new Set([`${KUBE_DNS_NAMESPACE}/${KUBE_DNS_SERVICE}`, `${KUBE_DNS_NAMESPACE}/${sliceName(name)}`]);
    const kick = (o: Readonly<KubeObject>) => {
      if (ours.has(`${o.metadata.namespace}/${o.metadata.name}`)) keeper!.kick();
    };
    const kicking = { onAdd: kick, onUpdate: (_old: unknown, o: Readonly<KubeObject>) => kick(o), onDelete: kick };
    services.addEventHandler(kicking);
    slices.addEventHandler(kicking);
  }

  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    stop.abort();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);

  factory.start(ctx);
  try {
    await factory.waitForCacheSync(stop.signal);
    synced = true;
    log.info("informers synced");
  } catch {
    // Aborted before the first list: shut down below.
  }
  const keeping = keeper && synced ? keeper.run(ctx) : Promise.resolve();
  await new Promise<void>((r) => (stop.signal.aborted ? r() : stop.signal.addEventListener("abort", () => r(), { once: true })));
  await keeping;
  if (keeper) {
    // Out of the Service first, then stop answering: queries already routed here still get answers.
    // Bounded: an unreachable apiserver must not keep the process from exiting.
    const gaveUp = new Promise<void>((r) => setTimeout(() => r(log.warn("gave up deleting our EndpointSlice after 5 s")), 5000).unref());
    await Promise.race([keeper.removeSlice().catch((e: unknown) => log.warn({ err: e }, "could not delete our EndpointSlice")), gaveUp]);
  }
  await server.close();
  health.close();
  process.exit(0);
}
