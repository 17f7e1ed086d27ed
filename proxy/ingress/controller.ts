// The ingress controller's control loop, shaped like kube-proxy's: informer handlers only ask for a
// sync; one sync() at most every minSyncPeriod rebuilds the routing and certificate tables from the
// caches as whole values and swaps them in, then records Events for new problems and writes
// status.loadBalancer of the Ingresses it serves. The request path reads the tables only.

import type { EndpointSlice, Ingress, IngressBackend, IngressClass, Secret, Service } from "../../api/index.ts";
import { defaultIngressClass, LEGACY_INGRESS_CLASS_ANNOTATION } from "../../apiserver/admission/defaultingressclass.ts";
import { isNotFound, type Client, type Context, type EventRecorder, type Informer, type Logger, type SharedInformerFactory } from "../../client/index.ts";
import { INDEX_BY_SERVICE, findServicePort, indexSliceByService, usableBackends } from "../endpoints.ts";
import { buildRoutingTable, EMPTY_TABLE, type RoutingTable, type Upstream } from "./routing.ts";
import { CertificateStore, type CertificateTable, type PemPair } from "./tls.ts";

/** spec.controller of the IngressClasses this controller serves. */
export const INGRESS_CONTROLLER_NAME = "kubelab.io/ingress-controller";

export interface IngressControllerOptions {
  client: Client;
  factory: SharedInformerFactory;
  recorder: EventRecorder;
  log: Logger;
  /** The IngressClass created at start and matched against the legacy annotation (default "kubelab"). */
  className?: string;
  /** The address written to status.loadBalancer.ingress[].ip. */
  statusIP: string;
  /** The certificate for names no Secret covers. */
  defaultCertificate: PemPair;
  /** The shortest time between two syncs (default 20 ms); changes in between are coalesced. */
  minSyncPeriodMs?: number;
  /** A full sync at least this often (default 30 s), so a missed event heals. */
  syncPeriodMs?: number;
}

interface Problem {
  ingress: Readonly<Ingress>;
  reason: string;
  message: string;
}

export class IngressController {
  /** The current routing table; replaced whole by each sync. */
  table: RoutingTable = EMPTY_TABLE;
  certificates: CertificateTable;
  private readonly ingresses: Informer<Ingress>;
  private readonly classes: Informer<IngressClass>;
  private readonly services: Informer<Service>;
  private readonly slices: Informer<EndpointSlice>;
  private readonly secrets: Informer<Secret>;
  private readonly certs: CertificateStore;
  private readonly className: string;
  private readonly cursors = new Map<string, { next: number }>();
  private reported = new Set<string>();
  private readonly announced = new Map<string, number>();
  /** Ingresses whose status this process wrote, so it clears only its own when it stops serving one. */
  private readonly statusOwned = new Set<string>();
  private readonly statusInFlight = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private lastSync = 0;
  private synced = false;
  private stopped = false;

  /** Set once our IngressClass is known to exist (found or created). */
  private classEnsured = false;

  constructor(private readonly o: IngressControllerOptions) {
    this.className = o.className ?? "kubelab";
    this.certs = new CertificateStore(o.defaultCertificate);
    this.certificates = { exact: new Map(), wildcard: new Map(), fallback: this.certs.fallback };
    this.ingresses = o.factory.informer<Ingress>("networking.k8s.io", "ingresses");
    this.classes = o.factory.informer<IngressClass>("networking.k8s.io", "ingressclasses");
    this.services = o.factory.informer<Service>("", "services");
    this.slices = o.factory.informer<EndpointSlice>("discovery.k8s.io", "endpointslices");
    this.secrets = o.factory.informer<Secret>("", "secrets");
    this.slices.addIndexer(INDEX_BY_SERVICE, indexSliceByService);
    const handler = { onAdd: () => this.requestSync(), onUpdate: () => this.requestSync(), onDelete: () => this.requestSync() };
    for (const inf of [this.ingresses, this.classes, this.services, this.slices, this.secrets] as Informer[]) inf.addEventHandler(handler);
  }

  /** True once the caches have synced, the first table is in place and our IngressClass exists. */
  ready(): boolean {
    return this.synced && this.classEnsured;
  }

  /** Creates our IngressClass, marked default, unless one of that name exists (then it is left as the user has it). */
  async ensureIngressClass(ctx: Context): Promise<void> {
    const rc = this.o.client.resource<IngressClass>("networking.k8s.io", "ingressclasses");
    for (let delay = 200; !ctx.signal.aborted; delay = Math.min(delay * 2, 5000)) {
      try {
        await rc.get("", this.className);
        this.classEnsured = true;
        return;
      } catch (e) {
        if (isNotFound(e)) {
          try {
            await rc.create("", {
              apiVersion: "networking.k8s.io/v1",
              kind: "IngressClass",
              metadata: { name: this.className, annotations: { "ingressclass.kubernetes.io/is-default-class": "true" } },
              spec: { controller: INGRESS_CONTROLLER_NAME },
            });
            ctx.log.info({ ingressClass: this.className }, "created IngressClass");
            this.classEnsured = true;
            return;
          } catch (ce) {
            if ((ce as { code?: number }).code === 409) continue;
            ctx.log.warn({ err: ce }, "cannot create the IngressClass; retrying");
          }
        } else ctx.log.warn({ err: e }, "cannot read the IngressClass; retrying");
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Syncs once the caches are in, then whenever they change, until ctx aborts. */
  async run(ctx: Context): Promise<void> {
    await Promise.all([this.ingresses, this.classes, this.services, this.slices, this.secrets].map((i) => (i as Informer).waitForSync(ctx.signal)));
    if (ctx.signal.aborted) return;
    this.sync(ctx.log);
    this.synced = true;
    const period = setInterval(() => this.requestSync(), this.o.syncPeriodMs ?? 30_000);
    await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
    this.stopped = true;
    clearInterval(period);
    if (this.timer) clearTimeout(this.timer);
  }

  /** Coalesces changes: one sync at most every minSyncPeriod. */
  requestSync(): void {
    if (!this.synced || this.stopped || this.timer) return;
    const wait = Math.max(0, this.lastSync + (this.o.minSyncPeriodMs ?? 20) - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.sync(this.o.log);
      } catch (e) {
        this.o.log.error({ err: e }, "ingress sync failed");
      }
    }, wait);
  }

  /** Whether this controller serves `ing`: the legacy annotation first, then the class's controller. */
  serves(ing: Readonly<Ingress>): boolean {
    const ann = ing.metadata.annotations?.[LEGACY_INGRESS_CLASS_ANNOTATION];
    if (ann !== undefined) return ann === this.className;
    const name = ing.spec?.ingressClassName;
    if (name) return this.classes.lister.get(name)?.spec?.controller === INGRESS_CONTROLLER_NAME;
    // Created before any default class existed (so admission set none): ours if our class is now the default.
    return defaultIngressClass([...this.classes.lister.list()])?.spec?.controller === INGRESS_CONTROLLER_NAME;
  }

  /** Rebuilds both tables from the caches and swaps them in; then Events and status. */
  sync(log: Logger): void {
    this.lastSync = Date.now();
    const served = this.ingresses.lister.list().filter((i) => !i.metadata.deletionTimestamp && this.serves(i));
    const problems: Problem[] = [];
    const memo = new Map<string, Upstream | undefined>();
    const usedCursors = new Set<string>();
    let current: Readonly<Ingress> | undefined;
    const resolve = (namespace: string, backend: IngressBackend): Upstream | undefined => {
      const u = this.upstream(namespace, backend, memo, usedCursors);
      if (u?.problem && current) problems.push({ ingress: current, reason: u.problemReason, message: u.problem });
      return u;
    };
    // Resolution per Ingress, so each problem is reported on every Ingress that has it.
    const tagged = served.map((ing) => {
      current = ing;
      for (const r of ing.spec?.rules ?? []) for (const p of r.http?.paths ?? []) resolve(ing.metadata.namespace ?? "default", p.backend);
      if (ing.spec?.defaultBackend) resolve(ing.metadata.namespace ?? "default", ing.spec.defaultBackend);
      return ing;
    });
    current = undefined;
    this.table = buildRoutingTable(tagged, (ns, b) => this.upstream(ns, b, memo, usedCursors), (loser, host, path, winner) =>
      problems.push({ ingress: loser, reason: "Conflict", message: `host "${host || "*"}" path "${path}" is already defined in Ingress ${winner}; that one is used` }),
    );
    for (const k of this.cursors.keys()) if (!usedCursors.has(k)) this.cursors.delete(k);
    const { table, problems: tlsProblems } = this.certs.build(served, (ns, name) => this.secrets.lister.get(`${ns}/${name}`));
    this.certificates = table;
    problems.push(...tlsProblems);
    this.report(problems, served);
    this.writeStatus(served, log);
  }

  private upstream(namespace: string, backend: IngressBackend, memo: Map<string, Upstream | undefined>, used: Set<string>): (Upstream & { problemReason: string }) | undefined {
    const svcRef = backend.service;
    const portText = svcRef?.port?.name ?? (svcRef?.port?.number !== undefined ? String(svcRef.port.number) : "");
    const key = svcRef ? `${namespace}/${svcRef.name}:${portText}` : `${namespace}/<resource>`;
    if (memo.has(key)) return memo.get(key) as (Upstream & { problemReason: string }) | undefined;
    used.add(key);
    let cursor = this.cursors.get(key);
    if (!cursor) this.cursors.set(key, (cursor = { next: 0 }));
    const base = { key, namespace, service: svcRef?.name ?? "", port: portText, cursor };
    let result: Upstream & { problemReason: string };
    if (!svcRef) {
      const r = backend.resource;
      result = { ...base, backends: [], problem: `resource backend ${r?.kind ?? "?"}/${r?.name ?? "?"} is not supported by this controller`, problemReason: "UnsupportedBackend" };
    } else {
      const svc = this.services.lister.get(`${namespace}/${svcRef.name}`);
      const sp = svc && findServicePort(svc, { name: svcRef.port?.name, number: svcRef.port?.number });
      if (!svc) result = { ...base, backends: [], problem: `service "${namespace}/${svcRef.name}" not found`, problemReason: "ServiceNotFound" };
      else if (svc.spec?.type === "ExternalName") result = { ...base, backends: [], problem: `service "${namespace}/${svcRef.name}" is of type ExternalName, which this controller does not proxy`, problemReason: "UnsupportedBackend" };
      else if (!sp) result = { ...base, backends: [], problem: `service "${namespace}/${svcRef.name}" has no port ${portText || "(none given and the Service has several)"}`, problemReason: "ServicePortNotFound" };
      else {
        const slices = this.slices.lister.byIndex(INDEX_BY_SERVICE, `${namespace}/${svcRef.name}`);
        result = { ...base, backends: usableBackends(slices, sp).filter((b) => (sp.protocol ?? "TCP") === "TCP"), problemReason: "" };
      }
    }
    memo.set(key, result);
    return result;
  }

  /** Events for problems not reported by the previous sync, and a Normal Sync for new generations. */
  private report(problems: Problem[], served: readonly Readonly<Ingress>[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const k = `${p.ingress.metadata.uid}\0${p.reason}\0${p.message}`;
      if (now.has(k)) continue;
      now.add(k);
      if (!this.reported.has(k)) this.o.recorder.event(p.ingress, "Warning", p.reason, p.message);
    }
    this.reported = now;
    const live = new Set<string>();
    for (const ing of served) {
      const uid = ing.metadata.uid ?? "";
      live.add(uid);
      const gen = ing.metadata.generation ?? 0;
      if (this.announced.get(uid) !== gen) {
        this.announced.set(uid, gen);
        this.o.recorder.event(ing, "Normal", "Sync", "Scheduled for sync");
      }
    }
    for (const uid of this.announced.keys()) if (!live.has(uid)) this.announced.delete(uid);
  }

  /** status.loadBalancer.ingress = [{ip}] on what we serve; cleared on what we served and no longer do. */
  private writeStatus(served: readonly Readonly<Ingress>[], log: Logger): void {
    const want = [{ ip: this.o.statusIP }];
    const wantJSON = JSON.stringify(want);
    const servedKeys = new Set<string>();
    const patch = (ing: Readonly<Ingress>, lb: unknown, desired: string) => {
      const key = `${ing.metadata.namespace}/${ing.metadata.name}`;
      if (this.statusInFlight.get(key) === desired) return;
      this.statusInFlight.set(key, desired);
      this.o.client
        .resource<Ingress>("networking.k8s.io", "ingresses")
        .patch(ing.metadata.namespace ?? "", ing.metadata.name ?? "", "merge", { status: { loadBalancer: lb } }, { subresource: "status" })
        .catch((e: unknown) => {
          if (!isNotFound(e)) log.warn({ err: e, ingress: key }, "cannot write the Ingress status; retrying on the next sync");
        })
        .finally(() => {
          if (this.statusInFlight.get(key) === desired) this.statusInFlight.delete(key);
        });
    };
    for (const ing of served) {
      const key = `${ing.metadata.namespace}/${ing.metadata.name}`;
      servedKeys.add(key);
      this.statusOwned.add(key);
      if (JSON.stringify(ing.status?.loadBalancer?.ingress ?? []) !== wantJSON) patch(ing, { ingress: want }, wantJSON);
    }
    for (const key of [...this.statusOwned]) {
      if (servedKeys.has(key)) continue;
      const ing = this.ingresses.lister.get(key);
      if (!ing) {
        this.statusOwned.delete(key);
        continue;
      }
      if (JSON.stringify(ing.status?.loadBalancer?.ingress ?? []) === wantJSON) patch(ing, { ingress: null }, "[]");
      else this.statusOwned.delete(key);
    }
  }
}
