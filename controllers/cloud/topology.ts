// The topology file (deploy/topologies/*.yaml): region, zones with their VPC subnets, instance
// types, node groups and serverless profiles, checked field by field. A mistake is one line naming
// the field (`topology.yaml: nodeGroups[0].maxSize: must be >= minSize (2), got 1`), because `up`
// and the cloud controller refuse to start on it.

import { readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import { formatCIDR, formatIPv4, isDNS1123Label, isQualifiedName, isValidLabelValue, isValidQuantity, parseCIDR, subnets } from "../../api/index.ts";
import { BUILTIN_INSTANCE_TYPES } from "./instancetypes.ts";
import type { InstanceType, NodeGroup, ServerlessProfile, TemplateTaint, Topology, TopologyZone } from "./types.ts";

export const TOPOLOGY_API_VERSION = "kubelab.io/v1alpha1";
/** Zones without a subnet share this range equally (what `up --cluster-cidr` sets). */
export const DEFAULT_CLUSTER_CIDR = "127.64.0.0/10";

class TopologyError extends Error {}

type Obj = Record<string, unknown>;

function fail(path: string, msg: string): never {
  throw new TopologyError(path ? `${path}: ${msg}` : msg);
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function obj(v: unknown, path: string, allowed: readonly string[]): Obj {
  if (!isObj(v)) fail(path, `must be a mapping, got ${describe(v)}`);
  for (const k of Object.keys(v)) if (!allowed.includes(k)) fail(path ? `${path}.${k}` : k, `unknown field (allowed: ${allowed.join(", ")})`);
  return v;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}

function str(v: unknown, path: string): string {
  if (typeof v !== "string" || v === "") fail(path, `must be a non-empty string, got ${describe(v)}`);
  return v;
}

function int(v: unknown, path: string, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) fail(path, `must be an integer, got ${describe(v)}`);
  if (v < min) fail(path, `must be >= ${min}, got ${v}`);
  return v;
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `must be a list, got ${describe(v)}`);
  return v;
}

function labelMap(v: unknown, path: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) fail(path, `must be a mapping of label keys to values, got ${describe(v)}`);
  const out: Record<string, string> = {};
  for (const [k, raw] of Object.entries(v)) {
    const keyErr = isQualifiedName(k);
    if (keyErr.length) fail(`${path}.${k}`, `invalid label key: ${keyErr[0]}`);
    const val = typeof raw === "number" || typeof raw === "boolean" ? String(raw) : raw;
    if (typeof val !== "string") fail(`${path}.${k}`, `must be a string, got ${describe(raw)}`);
    const valErr = isValidLabelValue(val);
    if (valErr.length) fail(`${path}.${k}`, `invalid label value ${JSON.stringify(val)}: ${valErr[0]}`);
    out[k] = val;
  }
  return out;
}

function zoneList(v: unknown, path: string, zones: readonly string[]): string[] {
  if (v === undefined || v === null) return [...zones];
  const names = list(v, path).map((z, i) => str(z, `${path}[${i}]`));
  if (names.length === 0) fail(path, "must name at least one zone (omit it for every zone)");
  names.forEach((z, i) => {
    if (!zones.includes(z)) fail(`${path}[${i}]`, `unknown zone ${JSON.stringify(z)} (zones: ${zones.join(", ")})`);
    if (names.indexOf(z) !== i) fail(`${path}[${i}]`, `duplicate zone ${JSON.stringify(z)}`);
  });
  return names;
}

function name(v: unknown, path: string, what: string, seen: Set<string>): string {
  const n = str(v, path);
  const errs = isDNS1123Label(n);
  if (errs.length) fail(path, `invalid ${what} name ${JSON.stringify(n)}: ${errs[0]}`);
  if (seen.has(n)) fail(path, `duplicate name ${JSON.stringify(n)}`);
  seen.add(n);
  return n;
}

function subnet(v: unknown, path: string): string {
  const s = str(v, path);
  const c = parseCIDR(s);
  if (!c || !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s)) fail(path, `must be an IPv4 CIDR like 127.64.0.0/16, got ${JSON.stringify(s)}`);
  if (c.prefix < 8 || formatIPv4(c.network).split(".")[0] !== "127") fail(path, `${s} is outside 127.0.0.0/8: simulated node and pod addresses must be loopback ones, so that no packet leaves this machine`);
  if (c.prefix > 28) fail(path, `${s} is smaller than a /28, the smallest subnet a VPC allows`);
  return formatCIDR(c);
}

function parseInstanceType(v: unknown, path: string, seen: Set<string>): InstanceType {
  const o = obj(v, path, ["name", "cpu", "memory", "enis", "ipsPerEni"]);
  const n = str(o.name, `${path}.name`);
  const errs = isValidLabelValue(n);
  if (errs.length) fail(`${path}.name`, `invalid instance type name ${JSON.stringify(n)} (it becomes the node.kubernetes.io/instance-type label): ${errs[0]}`);
  if (seen.has(n)) fail(`${path}.name`, `duplicate instance type ${JSON.stringify(n)}`);
  seen.add(n);
  const memory = typeof o.memory === "number" ? String(o.memory) : str(o.memory, `${path}.memory`);
  if (!isValidQuantity(memory)) fail(`${path}.memory`, `must be a quantity like 32Gi, got ${JSON.stringify(memory)}`);
  return { name: n, cpu: int(o.cpu, `${path}.cpu`, 1), memory, enis: int(o.enis, `${path}.enis`, 1), ipsPerEni: int(o.ipsPerEni, `${path}.ipsPerEni`, 2) };
}

function parseTaint(v: unknown, path: string): TemplateTaint {
  const o = obj(v, path, ["key", "value", "effect"]);
  const key = str(o.key, `${path}.key`);
  const kerr = isQualifiedName(key);
  if (kerr.length) fail(`${path}.key`, `invalid taint key: ${kerr[0]}`);
  const value = o.value === undefined || o.value === null ? undefined : typeof o.value === "string" ? o.value : fail(`${path}.value`, `must be a string, got ${describe(o.value)}`);
  if (value !== undefined && isValidLabelValue(value).length) fail(`${path}.value`, `invalid taint value: ${isValidLabelValue(value)[0]}`);
  const effect = str(o.effect, `${path}.effect`);
  if (effect !== "NoSchedule" && effect !== "PreferNoSchedule" && effect !== "NoExecute") fail(`${path}.effect`, `must be NoSchedule, PreferNoSchedule or NoExecute, got ${JSON.stringify(effect)}`);
  return value === undefined ? { key, effect } : { key, value, effect };
}

/** Parses and checks a topology document. `source` names the file in errors. */
export function loadTopology(text: string, source: string, opts: { clusterCIDR?: string } = {}): Topology {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = lineCounter.linePos(e.pos[0]).line;
    throw new Error(`${source}: ${line ? `line ${line}: ` : ""}${e.message.split("\n")[0]}`);
  }
  try {
    return checkTopology(doc.toJS(), opts.clusterCIDR);
  } catch (e) {
    if (e instanceof TopologyError) throw new Error(`${source}: ${e.message}`);
    throw e;
  }
}

export function loadTopologyFile(path: string, opts: { clusterCIDR?: string } = {}): Topology {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read the topology file ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  return loadTopology(text, path, opts);
}

function checkTopology(raw: unknown, clusterCIDROverride?: string): Topology {
  const o = obj(raw, "", ["apiVersion", "kind", "region", "clusterCIDR", "zones", "instanceTypes", "nodeGroups", "serverless"]);
  if (o.apiVersion !== TOPOLOGY_API_VERSION) fail("apiVersion", `must be ${TOPOLOGY_API_VERSION}, got ${describe(o.apiVersion)}`);
  if (o.kind !== "Topology") fail("kind", `must be Topology, got ${describe(o.kind)}`);
  const region = str(o.region, "region");
  if (isValidLabelValue(region).length) fail("region", `invalid region ${JSON.stringify(region)}: ${isValidLabelValue(region)[0]}`);

  // Zones and their subnets: all given, or none (then an equal share of clusterCIDR each).
  const rawZones = list(o.zones, "zones");
  if (rawZones.length === 0) fail("zones", "must list at least one zone");
  const zoneNames = new Set<string>();
  const partial = rawZones.map((z, i) => {
    const zo = obj(z, `zones[${i}]`, ["name", "subnet"]);
    const n = str(zo.name, `zones[${i}].name`);
    if (isValidLabelValue(n).length || isDNS1123Label(n).length) fail(`zones[${i}].name`, `invalid zone name ${JSON.stringify(n)}: ${[...isDNS1123Label(n), ...isValidLabelValue(n)][0]}`);
    if (zoneNames.has(n)) fail(`zones[${i}].name`, `duplicate zone ${JSON.stringify(n)}`);
    zoneNames.add(n);
    return { name: n, subnet: zo.subnet === undefined ? undefined : subnet(zo.subnet, `zones[${i}].subnet`) };
  });
  const withSubnet = partial.filter((z) => z.subnet !== undefined).length;
  if (withSubnet > 0 && clusterCIDROverride !== undefined) fail("zones", "the zones set their own subnets, so --cluster-cidr cannot apply to them");
  let zones: TopologyZone[];
  if (withSubnet === partial.length) {
    zones = partial.map((z) => ({ name: z.name, subnet: z.subnet! }));
    for (let i = 0; i < zones.length; i++) {
      for (let j = 0; j < i; j++) {
        const a = parseCIDR(zones[i].subnet)!;
        const b = parseCIDR(zones[j].subnet)!;
        if (a.network < b.network + b.size && b.network < a.network + a.size) fail(`zones[${i}].subnet`, `${zones[i].subnet} overlaps zones[${j}].subnet ${zones[j].subnet}`);
      }
    }
  } else if (withSubnet === 0) {
    const cidrPath = clusterCIDROverride !== undefined ? "--cluster-cidr" : "clusterCIDR";
    const cidr = subnet(clusterCIDROverride ?? o.clusterCIDR ?? DEFAULT_CLUSTER_CIDR, cidrPath);
    const c = parseCIDR(cidr)!;
    const prefix = c.prefix + Math.ceil(Math.log2(partial.length));
    if (prefix > 28) fail(cidrPath, `${cidr} is too small to give ${partial.length} zones a /28 each`);
    const parts = subnets(c, prefix, partial.length);
    zones = partial.map((z, i) => ({ name: z.name, subnet: parts[i] }));
  } else {
    const i = partial.findIndex((z) => z.subnet === undefined);
    fail(`zones[${i}].subnet`, "required: the other zones set their subnets (give every zone one, or none and set clusterCIDR)");
  }
  if (o.clusterCIDR !== undefined && withSubnet > 0) fail("clusterCIDR", "unused: every zone sets its own subnet");
  const allZones = zones.map((z) => z.name);

  const instanceTypes: Record<string, InstanceType> = { ...BUILTIN_INSTANCE_TYPES };
  const ownTypes = new Set<string>();
  (o.instanceTypes === undefined ? [] : list(o.instanceTypes, "instanceTypes")).forEach((v, i) => {
    const it = parseInstanceType(v, `instanceTypes[${i}]`, ownTypes);
    instanceTypes[it.name] = it;
  });

  const names = new Set<string>();
  const nodeGroups: NodeGroup[] = (o.nodeGroups === undefined ? [] : list(o.nodeGroups, "nodeGroups")).map((v, i) => {
    const p = `nodeGroups[${i}]`;
    const g = obj(v, p, ["name", "instanceType", "zones", "minSize", "maxSize", "desiredSize", "labels", "taints"]);
    const n = name(g.name, `${p}.name`, "node group", names);
    const instanceType = str(g.instanceType, `${p}.instanceType`);
    if (!instanceTypes[instanceType]) fail(`${p}.instanceType`, `unknown instance type ${JSON.stringify(instanceType)} (built in: ${Object.keys(BUILTIN_INSTANCE_TYPES).join(", ")}; or add it under instanceTypes)`);
    const gz = zoneList(g.zones, `${p}.zones`, allZones);
    const longest = Math.max(...gz.map((z) => z.length));
    if (n.length + longest + 5 > 63) fail(`${p}.name`, `too long: node names <group>-<zone>-<n> must fit 63 characters`);
    const minSize = int(g.minSize, `${p}.minSize`, 0);
    const maxSize = int(g.maxSize, `${p}.maxSize`, 0);
    if (maxSize < minSize) fail(`${p}.maxSize`, `must be >= minSize (${minSize}), got ${maxSize}`);
    const desiredSize = g.desiredSize === undefined ? minSize : int(g.desiredSize, `${p}.desiredSize`, 0);
    if (desiredSize < minSize || desiredSize > maxSize) fail(`${p}.desiredSize`, `must be between minSize (${minSize}) and maxSize (${maxSize}), got ${desiredSize}`);
    const labels = labelMap(g.labels, `${p}.labels`);
    const taints = (g.taints === undefined || g.taints === null ? [] : list(g.taints, `${p}.taints`)).map((t, j) => parseTaint(t, `${p}.taints[${j}]`));
    return { name: n, instanceType, zones: gz, minSize, maxSize, desiredSize, labels, taints };
  });

  const serverless: ServerlessProfile[] = (o.serverless === undefined ? [] : list(o.serverless, "serverless")).map((v, i) => {
    const p = `serverless[${i}]`;
    const s = obj(v, p, ["name", "zones", "selectors"]);
    const n = name(s.name, `${p}.name`, "serverless profile", names);
    const zs = zoneList(s.zones, `${p}.zones`, allZones);
    const selectors = list(s.selectors, `${p}.selectors`).map((sel, j) => {
      const so = obj(sel, `${p}.selectors[${j}]`, ["namespace", "labels"]);
      const ns = str(so.namespace, `${p}.selectors[${j}].namespace`);
      if (isDNS1123Label(ns).length) fail(`${p}.selectors[${j}].namespace`, `invalid namespace ${JSON.stringify(ns)}: ${isDNS1123Label(ns)[0]}`);
      return { namespace: ns, labels: labelMap(so.labels, `${p}.selectors[${j}].labels`) };
    });
    if (selectors.length === 0) fail(`${p}.selectors`, "must have at least one selector");
    return { name: n, zones: zs, selectors };
  });

  return { region, zones, instanceTypes, nodeGroups, serverless };
}

/** `up`'s shorthand flags on the default topology: --zones, --region, --nodes-per-zone. */
export function overrideTopology(t: Topology, o: { zones?: string[]; region?: string; nodesPerZone?: number; clusterCIDR?: string }): Topology {
  let out: Topology = { ...t };
  if (o.region !== undefined) {
    if (isValidLabelValue(o.region).length) throw new Error(`--region: invalid region ${JSON.stringify(o.region)}: ${isValidLabelValue(o.region)[0]}`);
    out.region = o.region;
  }
  if (o.zones !== undefined) {
    o.zones.forEach((z) => {
      const errs = [...isDNS1123Label(z), ...isValidLabelValue(z)];
      if (errs.length) throw new Error(`--zones: invalid zone name ${JSON.stringify(z)}: ${errs[0]}`);
    });
    if (new Set(o.zones).size !== o.zones.length) throw new Error(`--zones: a zone is listed twice`);
    const cidr = o.clusterCIDR ?? DEFAULT_CLUSTER_CIDR;
    const c = parseCIDR(cidr);
    if (!c) throw new Error(`--cluster-cidr: "${cidr}" is not an IPv4 CIDR like 127.64.0.0/10`);
    const prefix = c.prefix + Math.ceil(Math.log2(o.zones.length));
    if (prefix > 28) throw new Error(`--cluster-cidr ${cidr} is too small to give ${o.zones.length} zones a /28 each`);
    const parts = subnets(c, prefix, o.zones.length);
    out.zones = o.zones.map((z, i) => ({ name: z, subnet: parts[i] }));
    const keep = (zs: string[]) => (zs.length === t.zones.length ? [...o.zones!] : zs.filter((z) => o.zones!.includes(z)));
    out.nodeGroups = out.nodeGroups.map((g) => ({ ...g, zones: keep(g.zones) })).filter((g) => g.zones.length > 0);
    out.serverless = out.serverless.map((s) => ({ ...s, zones: keep(s.zones) })).filter((s) => s.zones.length > 0);
  }
  if (o.nodesPerZone !== undefined) {
    const n = o.nodesPerZone;
    out = { ...out, nodeGroups: out.nodeGroups.map((g) => ({ ...g, desiredSize: n, minSize: Math.min(g.minSize, n), maxSize: Math.max(g.maxSize, n) })) };
  }
  return out;
}

/** The topology as the file format (what up writes to DATA/topology.yaml for the cloud controller). */
export function topologyDocument(t: Topology): Record<string, unknown> {
  const own = Object.values(t.instanceTypes).filter((it) => BUILTIN_INSTANCE_TYPES[it.name] !== it);
  return {
    apiVersion: TOPOLOGY_API_VERSION,
    kind: "Topology",
    region: t.region,
    zones: t.zones.map((z) => ({ name: z.name, subnet: z.subnet })),
    ...(own.length ? { instanceTypes: own.map((it) => ({ ...it })) } : {}),
    nodeGroups: t.nodeGroups.map((g) => ({ ...g })),
    ...(t.serverless.length ? { serverless: t.serverless.map((s) => ({ ...s })) } : {}),
  };
}
