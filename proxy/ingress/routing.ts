// The ingress controller's routing table: every served Ingress merged into servers by host (as
// ingress-nginx renders one nginx `server` per host), each with its paths sorted longest first. Built
// as an immutable value on informer changes and swapped in whole; the request path only reads it.

import type { Backend } from "../endpoints.ts";
import type { Ingress, IngressBackend, PathType } from "../../api/index.ts";

/** The Service port an Ingress backend names, resolved to its current backends when the table is built. */
export interface Upstream {
  /** "namespace/service:port" — also the metrics' `service` label source. */
  readonly key: string;
  readonly namespace: string;
  readonly service: string;
  readonly port: string;
  readonly backends: readonly Backend[];
  /** Why there can be no backends (missing Service or port): 503 and an Event on the Ingress. */
  readonly problem?: string;
  /** Round-robin position, shared by every route to this upstream; survives table rebuilds. */
  readonly cursor: { next: number };
}

export interface Route {
  /** The path as written, normalised for Prefix (no trailing "/" except "/" itself). */
  readonly path: string;
  readonly pathType: "Exact" | "Prefix";
  readonly upstream: Upstream;
  /** "namespace/name" of the Ingress the route came from. */
  readonly ingress: string;
  readonly namespace: string;
  readonly ingressName: string;
  /** The rule's host ("" for any host), the metrics' `host` label. */
  readonly host: string;
}

export interface Server {
  /** Longest path first; at equal length Exact before Prefix. */
  readonly routes: readonly Route[];
}

export interface RoutingTable {
  readonly exact: ReadonlyMap<string, Server>;
  /** "*.example.com" rules by their suffix "example.com" (one label deep). */
  readonly wildcard: ReadonlyMap<string, Server>;
  /** Rules without a host. */
  readonly any: Server;
  /** spec.defaultBackend of the oldest Ingress that has one. */
  readonly defaultBackend?: Route;
}

export const EMPTY_TABLE: RoutingTable = { exact: new Map(), wildcard: new Map(), any: { routes: [] } };

/** Resolves an Ingress backend of `namespace` to an Upstream (memoised by the caller per build). */
export type UpstreamResolver = (namespace: string, backend: IngressBackend) => Upstream | undefined;

/** Creation order, as ingress-nginx resolves conflicts: the oldest Ingress wins; ties by namespace/name. */
export function byAge(a: Readonly<Ingress>, b: Readonly<Ingress>): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? "") || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? "") || 0;
  if (ta !== tb) return ta - tb;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function normalisePath(path: string | undefined, type: "Exact" | "Prefix"): string {
  let p = path || "/";
  if (!p.startsWith("/")) p = "/" + p;
  if (type === "Prefix" && p.length > 1) p = p.replace(/\/+$/, "") || "/";
  return p;
}

function effectiveType(t: PathType | undefined): "Exact" | "Prefix" {
  // ImplementationSpecific is ours to define: a Prefix match, as ingress-nginx treats it without regex.
  return t === "Exact" ? "Exact" : "Prefix";
}

function sortRoutes(routes: Route[]): Route[] {
  return routes.sort((a, b) => b.path.length - a.path.length || (a.pathType === b.pathType ? 0 : a.pathType === "Exact" ? -1 : 1));
}

/**
 * Merges `ingresses` (already filtered to the ones this controller serves) into a table. A host+path+type
 * claimed by two Ingresses goes to the oldest; `conflict` is told about the loser.
 */
export function buildRoutingTable(
  ingresses: readonly Readonly<Ingress>[],
  resolve: UpstreamResolver,
  conflict: (loser: Readonly<Ingress>, host: string, path: string, winner: string) => void = () => {},
): RoutingTable {
  const servers = new Map<string, { routes: Route[]; seen: Map<string, string> }>();
  const server = (host: string) => {
    let s = servers.get(host);
    if (!s) servers.set(host, (s = { routes: [], seen: new Map() }));
    return s;
  };
  let defaultBackend: Route | undefined;
  for (const ing of [...ingresses].sort(byAge)) {
    const namespace = ing.metadata.namespace ?? "default";
    const name = ing.metadata.name ?? "";
    const key = `${namespace}/${name}`;
    const spec = ing.spec ?? {};
    if (spec.defaultBackend && !defaultBackend) {
      const up = resolve(namespace, spec.defaultBackend);
      if (up) defaultBackend = { path: "/", pathType: "Prefix", upstream: up, ingress: key, namespace, ingressName: name, host: "" };
    }
    for (const rule of spec.rules ?? []) {
      const host = (rule.host ?? "").toLowerCase();
      const s = server(host);
      for (const p of rule.http?.paths ?? []) {
        const pathType = effectiveType(p.pathType);
        const path = normalisePath(p.path, pathType);
        const id = `${pathType} ${path}`;
        const winner = s.seen.get(id);
        if (winner !== undefined) {
          if (winner !== key) conflict(ing, host, path, winner);
          continue;
        }
        const up = resolve(namespace, p.backend);
        if (!up) continue;
        s.seen.set(id, key);
        s.routes.push({ path, pathType, upstream: up, ingress: key, namespace, ingressName: name, host });
      }
    }
  }
  const exact = new Map<string, Server>();
  const wildcard = new Map<string, Server>();
  let any: Server = { routes: [] };
  for (const [host, s] of servers) {
    const value: Server = { routes: sortRoutes(s.routes) };
    if (host === "") any = value;
    else if (host.startsWith("*.")) wildcard.set(host.slice(2), value);
    else exact.set(host, value);
  }
  return { exact, wildcard, any, defaultBackend };
}

/** The Host header without its port, lower-cased ("[::1]:80" → "[::1]"). */
export function hostOnly(hostHeader: string | undefined): string {
  if (!hostHeader) return "";
  let h = hostHeader;
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    h = end >= 0 ? h.slice(0, end + 1) : h;
  } else {
    const colon = h.indexOf(":");
    if (colon >= 0) h = h.slice(0, colon);
  }
  return h.toLowerCase();
}

/** The server for a host: the exact host, else its one-label wildcard, else the host-less rules. */
export function serverFor(table: RoutingTable, host: string): Server {
  const exact = table.exact.get(host);
  if (exact) return exact;
  if (table.wildcard.size > 0) {
    const dot = host.indexOf(".");
    if (dot > 0) {
      const w = table.wildcard.get(host.slice(dot + 1));
      if (w) return w;
    }
  }
  return table.any;
}

/** Element-wise prefix: "/foo" matches "/foo", "/foo/" and "/foo/bar", not "/foobar". */
function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === "/") return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47; // "/"
}

/**
 * The route for a request: the longest matching path of the host's server, else the default backend
 * (the oldest Ingress's spec.defaultBackend), else undefined (404). `path` excludes the query string.
 */
export function matchRoute(table: RoutingTable, host: string, path: string): Route | undefined {
  const s = serverFor(table, host);
  for (const r of s.routes) {
    if (r.pathType === "Exact" ? r.path === path : prefixMatches(r.path, path)) return r;
  }
  return table.defaultBackend;
}
