// Validation of the core/v1 kinds other than pods: services, config, nodes, namespaces, events,
// endpoints, persistent volumes and claims.

import { PERSISTENT_VOLUME_SOURCE_KEYS } from "../core/v1.ts";
import { isValidQuantity, parseQuantityMilli, QUANTITY_FORMAT_ERROR } from "../quantity.ts";
import type { FieldError } from "./field.ts";
import { child, duplicate, forbidden, index, invalid, key, notSupported, required, tooLong } from "./field.ts";
import { validateEnum, validateImmutableField, validateLabels, validateLabelSelector, validateNonnegative } from "./meta.ts";
import {
  IP_ERROR,
  isConfigMapKey,
  isDNS1123Label,
  isDNS1123Subdomain,
  isIP,
  isIPv4,
  isQualifiedName,
  isValidCIDR,
  isValidPortNum,
} from "./names.ts";
import { PORT_PROTOCOLS, validatePortNumOrName, validateTaints } from "./pod.ts";
import { arr, deepEqual, isInt, isRec, rec, str, type Rec } from "./util.ts";

// ---------------------------------------------------------------------------------------------
// Service

/** sets.List order, as Kubernetes prints them. */
const SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

export function validateServiceSpec(spec: unknown): FieldError[] {
  const errs: FieldError[] = [];
  const specPath = "spec";
  if (!isRec(spec)) return [required(specPath, "")];
  const type = spec.type ?? "ClusterIP";
  const clusterIP = str(spec.clusterIP);
  const headless = clusterIP === "None";
  const ports = arr(spec.ports);
  if (!SERVICE_TYPES.includes(str(type))) errs.push(notSupported(child(specPath, "type"), type, SERVICE_TYPES));

  if (type === "ExternalName") {
    if (clusterIP !== "" || arr(spec.clusterIPs).length > 0) {
      errs.push(forbidden(child(specPath, "clusterIPs"), "may not be set for ExternalName services"));
    }
    const en = str(spec.externalName).replace(/\.$/, "");
    if (!en) errs.push(required(child(specPath, "externalName"), ""));
    else for (const m of isDNS1123Subdomain(en)) errs.push(invalid(child(specPath, "externalName"), spec.externalName, m));
  } else if (ports.length === 0 && !headless) {
    errs.push(required(child(specPath, "ports"), ""));
  }

  const portsPath = child(specPath, "ports");
  const requireName = ports.length > 1;
  const names = new Set<string>();
  ports.forEach((pt, i) => {
    const sp = rec(pt);
    const p = index(portsPath, i);
    const name = str(sp.name);
    if (requireName && !name) errs.push(required(child(p, "name"), ""));
    else if (name) {
      for (const m of isDNS1123Label(name)) errs.push(invalid(child(p, "name"), name, m));
      if (names.has(name)) errs.push(duplicate(child(p, "name"), name));
      else names.add(name);
    }
    for (const m of isValidPortNum(sp.port)) errs.push(invalid(child(p, "port"), sp.port ?? 0, m));
    errs.push(...validateEnum(sp.protocol, PORT_PROTOCOLS, child(p, "protocol")));
    if (sp.targetPort !== undefined && sp.targetPort !== 0 && sp.targetPort !== "") {
      errs.push(...validatePortNumOrName(sp.targetPort, child(p, "targetPort")));
    }
    if (sp.nodePort !== undefined && sp.nodePort !== 0) {
      if (type === "ClusterIP" || type === "ExternalName") {
        errs.push(forbidden(child(p, "nodePort"), `may not be used when \`type\` is '${str(type)}'`));
      } else {
        for (const m of isValidPortNum(sp.nodePort)) errs.push(invalid(child(p, "nodePort"), sp.nodePort, m));
      }
    }
  });
  // Node ports must be unique per protocol.
  const nodePorts = new Set<string>();
  ports.forEach((pt, i) => {
    const sp = rec(pt);
    if (!isInt(sp.nodePort) || sp.nodePort === 0) return;
    const k = `${sp.nodePort}/${str(sp.protocol)}`;
    if (nodePorts.has(k)) errs.push(duplicate(child(index(portsPath, i), "nodePort"), sp.nodePort));
    nodePorts.add(k);
  });
  // Port/protocol pairs must be unique.
  const portProtos = new Set<string>();
  ports.forEach((pt, i) => {
    const sp = rec(pt);
    const k = `${String(sp.port)}/${str(sp.protocol)}`;
    if (portProtos.has(k)) errs.push(duplicate(index(portsPath, i), `{${String(sp.port)}, ${str(sp.protocol)}}`));
    portProtos.add(k);
  });

  if (spec.selector !== undefined) errs.push(...validateLabels(spec.selector, child(specPath, "selector")));
  if (spec.sessionAffinity !== undefined) errs.push(...validateEnum(spec.sessionAffinity, ["ClientIP", "None"], child(specPath, "sessionAffinity")));

  if (type !== "ExternalName") {
    if (clusterIP !== "" && !headless && !isIP(clusterIP)) errs.push(invalid(child(specPath, "clusterIP"), clusterIP, IP_ERROR));
    arr(spec.clusterIPs).forEach((ip, i) => {
      const s = str(ip);
      if (s === "None" && i === 0) return;
      if (!isIP(s)) errs.push(invalid(index(child(specPath, "clusterIPs"), i), ip, IP_ERROR));
    });
    const ips = arr(spec.clusterIPs);
    if (clusterIP !== "" && ips.length > 0 && ips[0] !== clusterIP) {
      errs.push(invalid(child(specPath, "clusterIPs"), ips, "must be the same as clusterIP"));
    }
    if (ips.length > 2) errs.push(invalid(child(specPath, "clusterIPs"), ips, "may only hold up to 2 values"));
    else if (ips.length === 2 && ips.every((ip) => isIP(str(ip))) && isIPv4(str(ips[0])) === isIPv4(str(ips[1]))) {
      errs.push(invalid(child(specPath, "clusterIPs"), ips, "may specify no more than one IP for each IP family"));
    }
  }
  if (spec.ipFamilyPolicy !== undefined) {
    errs.push(...validateEnum(spec.ipFamilyPolicy, ["PreferDualStack", "RequireDualStack", "SingleStack"], child(specPath, "ipFamilyPolicy")));
  }
  arr(spec.ipFamilies).forEach((f, i) => errs.push(...validateEnum(f, ["IPv4", "IPv6"], index(child(specPath, "ipFamilies"), i))));
  if (spec.internalTrafficPolicy !== undefined) {
    errs.push(...validateEnum(spec.internalTrafficPolicy, ["Cluster", "Local"], child(specPath, "internalTrafficPolicy")));
  }
  // healthCheckNodePort belongs to LoadBalancers with externalTrafficPolicy Local only.
  if (spec.healthCheckNodePort !== undefined && spec.healthCheckNodePort !== 0) {
    if (type !== "LoadBalancer" || spec.externalTrafficPolicy !== "Local") {
      errs.push(forbidden(child(specPath, "healthCheckNodePort"), "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
    } else {
      for (const m of isValidPortNum(spec.healthCheckNodePort)) errs.push(invalid(child(specPath, "healthCheckNodePort"), spec.healthCheckNodePort, m));
    }
  }
  if (spec.externalTrafficPolicy !== undefined && spec.externalTrafficPolicy !== "") {
    if (type === "ClusterIP" || type === "ExternalName") {
      errs.push(invalid(child(specPath, "externalTrafficPolicy"), spec.externalTrafficPolicy, "may only be set when `type` is 'NodePort' or 'LoadBalancer'"));
    } else {
      errs.push(...validateEnum(spec.externalTrafficPolicy, ["Cluster", "Local"], child(specPath, "externalTrafficPolicy")));
    }
  }
  arr(spec.externalIPs).forEach((ip, i) => {
    if (!isIP(str(ip))) errs.push(invalid(index(child(specPath, "externalIPs"), i), ip, IP_ERROR));
  });
  arr(spec.loadBalancerSourceRanges).forEach((r, i) => {
    for (const m of isValidCIDR(str(r))) errs.push(invalid(index(child(specPath, "loadBalancerSourceRanges"), i), r, m));
  });
  return errs;
}

/** Service update: an allocated clusterIP never changes (except when becoming ExternalName). */
export function validateServiceUpdate(spec: unknown, oldSpec: unknown): FieldError[] {
  const ns = rec(spec);
  const os = rec(oldSpec);
  const errs: FieldError[] = [];
  const oldIP = str(os.clusterIP);
  if (oldIP !== "" && ns.type !== "ExternalName" && os.type !== "ExternalName") {
    const newIP = str(ns.clusterIP);
    if (newIP !== oldIP) errs.push(invalid(index(child("spec", "clusterIPs"), 0), newIP, "may not change once set"));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// ConfigMap and Secret

/** Largest total size of a ConfigMap's or Secret's data (1 MiB). */
export const MaxSecretSize = 1024 * 1024;

function base64Size(v: string): number {
  return Buffer.from(v, "base64").length;
}

export function validateConfigMap(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  let total = 0;
  const data = isRec(obj.data) ? obj.data : {};
  const binary = isRec(obj.binaryData) ? obj.binaryData : {};
  if (obj.data !== undefined && obj.data !== null && !isRec(obj.data)) errs.push(invalid("data", obj.data, "must be a map of strings"));
  for (const [k, v] of Object.entries(data)) {
    for (const m of isConfigMapKey(k)) errs.push(invalid(key("data", k), k, m));
    if (k in binary) errs.push(invalid(key("data", k), k, "duplicate of key present in binaryData"));
    if (typeof v !== "string") errs.push(invalid(key("data", k), v, "must be a string"));
    else total += Buffer.byteLength(v);
  }
  for (const [k, v] of Object.entries(binary)) {
    for (const m of isConfigMapKey(k)) errs.push(invalid(key("binaryData", k), k, m));
    if (k in data) errs.push(invalid(key("binaryData", k), k, "duplicate of key present in data"));
    if (typeof v !== "string") errs.push(invalid(key("binaryData", k), v, "must be a base64 string"));
    else total += base64Size(v);
  }
  if (total > MaxSecretSize) errs.push(tooLong("", "", MaxSecretSize));
  return errs;
}

/** ConfigMap/Secret update: with `immutable: true` nothing in the data may change, nor the flag. */
export function validateImmutableData(obj: Rec, old: Rec, fields: readonly string[]): FieldError[] {
  const errs: FieldError[] = [];
  if (old.immutable !== true) return errs;
  if (obj.immutable !== true) errs.push(forbidden("immutable", "field is immutable when `immutable` is set"));
  for (const f of fields) {
    if (!deepEqual(obj[f] ?? {}, old[f] ?? {})) errs.push(forbidden(f, "field is immutable when `immutable` is set"));
  }
  return errs;
}

const SECRET_TYPE_REQUIRED_KEYS: Record<string, readonly string[]> = {
  "kubernetes.io/dockercfg": [".dockercfg"],
  "kubernetes.io/dockerconfigjson": [".dockerconfigjson"],
  "kubernetes.io/ssh-auth": ["ssh-privatekey"],
  "kubernetes.io/tls": ["tls.crt", "tls.key"],
};

export function validateSecret(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const data = isRec(obj.data) ? obj.data : {};
  if (obj.data !== undefined && obj.data !== null && !isRec(obj.data)) errs.push(invalid("data", obj.data, "must be a map of base64 strings"));
  let total = 0;
  for (const [k, v] of Object.entries(data)) {
    for (const m of isConfigMapKey(k)) errs.push(invalid(key("data", k), k, m));
    if (typeof v !== "string") errs.push(invalid(key("data", k), v, "must be a base64 string"));
    else total += base64Size(v);
  }
  for (const [k, v] of Object.entries(rec(obj.stringData))) {
    for (const m of isConfigMapKey(k)) errs.push(invalid(key("stringData", k), k, m));
    if (typeof v === "string") total += Buffer.byteLength(v);
  }
  if (total > MaxSecretSize) errs.push(tooLong("data", "", MaxSecretSize));
  const type = obj.type === undefined ? "Opaque" : str(obj.type);
  if (obj.type !== undefined && typeof obj.type !== "string") errs.push(invalid("type", obj.type, "must be a string"));
  const has = (k: string): boolean => k in data || k in rec(obj.stringData);
  for (const k of SECRET_TYPE_REQUIRED_KEYS[type] ?? []) if (!has(k)) errs.push(required(key("data", k), ""));
  if (type === "kubernetes.io/service-account-token") {
    const ann = rec(rec(obj.metadata).annotations);
    if (!str(ann["kubernetes.io/service-account.name"])) {
      errs.push(required(key(child("metadata", "annotations"), "kubernetes.io/service-account.name"), ""));
    }
  }
  if (type === "kubernetes.io/basic-auth" && !has("username") && !has("password")) {
    errs.push(required(key("data", "username"), ""));
    errs.push(required(key("data", "password"), ""));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Namespace, Node, ServiceAccount, Event, Endpoints

export function validateNamespace(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  arr(rec(obj.spec).finalizers).forEach((f, i) => {
    const p = index(child("spec", "finalizers"), i);
    const s = str(f);
    const msgs = isQualifiedName(s);
    for (const m of msgs) errs.push(invalid(p, f, m));
    if (msgs.length === 0 && !s.includes("/") && s !== "kubernetes") {
      errs.push(invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"));
    }
  });
  return errs;
}

export function validateNode(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec);
  errs.push(...validateTaints(spec.taints, child("spec", "taints")));
  if (spec.podCIDR !== undefined && spec.podCIDR !== "") {
    for (const m of isValidCIDR(str(spec.podCIDR))) errs.push(invalid(child("spec", "podCIDR"), spec.podCIDR, m));
  }
  arr(spec.podCIDRs).forEach((c, i) => {
    for (const m of isValidCIDR(str(c))) errs.push(invalid(index(child("spec", "podCIDRs"), i), c, m));
  });
  const status = rec(obj.status);
  for (const which of ["capacity", "allocatable"]) {
    for (const [name, q] of Object.entries(rec(status[which]))) {
      if (!isValidQuantity(q)) errs.push(invalid(key(child("status", which), name), q, QUANTITY_FORMAT_ERROR));
      else if (parseQuantityMilli(q as string | number) < 0) {
        errs.push(invalid(key(child("status", which), name), q, "must be greater than or equal to 0"));
      }
    }
  }
  arr(status.addresses).forEach((a, i) => {
    const addr = rec(a);
    const p = index(child("status", "addresses"), i);
    if (!str(addr.type)) errs.push(required(child(p, "type"), ""));
    if (!str(addr.address)) errs.push(required(child(p, "address"), ""));
  });
  return errs;
}

/** Node update: podCIDR(s) and providerID may only go from unset to set. */
export function validateNodeUpdate(obj: Rec, old: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const ns = rec(obj.spec);
  const os = rec(old.spec);
  if (arr(os.podCIDRs).length > 0 && !deepEqual(ns.podCIDRs, os.podCIDRs)) {
    errs.push(forbidden(child("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"));
  } else if (str(os.podCIDR) !== "" && ns.podCIDR !== os.podCIDR) {
    errs.push(forbidden(child("spec", "podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"));
  }
  if (str(os.providerID) !== "" && ns.providerID !== os.providerID) {
    errs.push(forbidden(child("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"));
  }
  return errs;
}

export function validateEvent(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(obj.involvedObject)) return [required("involvedObject", "")];
  const io = obj.involvedObject;
  const ns = str(rec(obj.metadata).namespace);
  const ions = str(io.namespace);
  if (ions === "") {
    if (ns !== "" && ns !== "default") errs.push(invalid(child("involvedObject", "namespace"), ions, "does not match event.namespace"));
  } else if (ns !== ions) {
    errs.push(invalid(child("involvedObject", "namespace"), ions, "does not match event.namespace"));
  }
  if (obj.type !== undefined && obj.type !== "" && obj.type !== "Normal" && obj.type !== "Warning") {
    errs.push(invalid("type", obj.type, "has invalid value: must be Normal or Warning"));
  }
  if (obj.count !== undefined) errs.push(...validateNonnegative(obj.count, "count"));
  for (const f of ["reason", "action"]) {
    if (str(obj[f]).length > 128) errs.push(tooLong(f, "", 128));
  }
  if (str(obj.message).length > 4096) errs.push(tooLong("message", "", 4096));
  return errs;
}

function validateEndpointAddress(a: unknown, fldPath: string): FieldError[] {
  const addr = rec(a);
  const errs: FieldError[] = [];
  if (!isIP(str(addr.ip))) errs.push(invalid(child(fldPath, "ip"), addr.ip ?? "", IP_ERROR));
  if (addr.hostname !== undefined && addr.hostname !== "") {
    for (const m of isDNS1123Label(str(addr.hostname))) errs.push(invalid(child(fldPath, "hostname"), addr.hostname, m));
  }
  if (addr.nodeName !== undefined && addr.nodeName !== "") {
    for (const m of isDNS1123Subdomain(str(addr.nodeName))) errs.push(invalid(child(fldPath, "nodeName"), addr.nodeName, m));
  }
  return errs;
}

export function validateEndpoints(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  arr(obj.subsets).forEach((s, i) => {
    const subset = rec(s);
    const p = index("subsets", i);
    const addresses = arr(subset.addresses);
    const notReady = arr(subset.notReadyAddresses);
    if (addresses.length === 0 && notReady.length === 0) {
      errs.push(required(p, "must specify `addresses` or `notReadyAddresses`"));
    }
    addresses.forEach((a, j) => errs.push(...validateEndpointAddress(a, index(child(p, "addresses"), j))));
    notReady.forEach((a, j) => errs.push(...validateEndpointAddress(a, index(child(p, "notReadyAddresses"), j))));
    const ports = arr(subset.ports);
    const names = new Set<string>();
    ports.forEach((pt, j) => {
      const port = rec(pt);
      const pp = index(child(p, "ports"), j);
      const name = str(port.name);
      if (ports.length > 1 && !name) errs.push(required(child(pp, "name"), ""));
      else if (name) {
        for (const m of isDNS1123Label(name)) errs.push(invalid(child(pp, "name"), name, m));
        if (names.has(name)) errs.push(duplicate(child(pp, "name"), name));
        names.add(name);
      }
      for (const m of isValidPortNum(port.port)) errs.push(invalid(child(pp, "port"), port.port ?? 0, m));
      errs.push(...validateEnum(port.protocol, PORT_PROTOCOLS, child(pp, "protocol")));
    });
  });
  return errs;
}

// ---------------------------------------------------------------------------------------------
// PersistentVolume and PersistentVolumeClaim

/** Printed in this order by Kubernetes (supportedAccessModes.List()). */
const ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
const RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"];
const VOLUME_MODES = ["Block", "Filesystem"];

function validateAccessModes(modes: unknown, fldPath: string, requiredDetail: string): FieldError[] {
  const errs: FieldError[] = [];
  const list = arr(modes);
  if (list.length === 0) return [required(fldPath, requiredDetail)];
  let hasRWOP = false;
  for (const m of list) {
    if (!ACCESS_MODES.includes(str(m))) errs.push(notSupported(fldPath, m, ACCESS_MODES));
    if (m === "ReadWriteOncePod") hasRWOP = true;
  }
  if (hasRWOP && list.length > 1) errs.push(forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"));
  return errs;
}

export function validatePersistentVolume(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(obj.spec)) return [required("spec", "")];
  const spec = obj.spec;
  const specPath = "spec";
  errs.push(...validateAccessModes(spec.accessModes, child(specPath, "accessModes"), ""));
  const capacity = spec.capacity;
  if (!isRec(capacity) || Object.keys(capacity).length === 0) {
    errs.push(required(child(specPath, "capacity"), ""));
  } else {
    if (!("storage" in capacity) || Object.keys(capacity).length > 1) {
      errs.push(notSupported(child(specPath, "capacity"), capacity, ["storage"]));
    }
    for (const [name, q] of Object.entries(capacity)) {
      const p = key(child(specPath, "capacity"), name);
      if (!isValidQuantity(q)) errs.push(invalid(p, q, QUANTITY_FORMAT_ERROR));
      else if (parseQuantityMilli(q as string | number) <= 0) errs.push(invalid(p, String(q), "must be greater than zero"));
    }
  }
  const sources = PERSISTENT_VOLUME_SOURCE_KEYS.filter((k) => spec[k] !== undefined && spec[k] !== null);
  if (sources.length === 0) errs.push(required(specPath, "must specify a volume type"));
  else if (sources.length > 1) errs.push(forbidden(child(specPath, sources[1]), "may not specify more than 1 volume type"));
  else {
    const src = rec(spec[sources[0]]);
    const sp = child(specPath, sources[0]);
    if (sources[0] === "csi") {
      if (!str(src.driver)) errs.push(required(child(sp, "driver"), ""));
      if (!str(src.volumeHandle)) errs.push(required(child(sp, "volumeHandle"), ""));
    } else if (sources[0] === "nfs") {
      if (!str(src.server)) errs.push(required(child(sp, "server"), ""));
      if (!str(src.path)) errs.push(required(child(sp, "path"), ""));
    } else if (!str(src.path)) {
      errs.push(required(child(sp, "path"), ""));
    }
    if (sources[0] === "local" && !isRec(spec.nodeAffinity)) {
      errs.push(required(child(specPath, "nodeAffinity"), "Local volume requires node affinity"));
    }
  }
  if (spec.persistentVolumeReclaimPolicy !== undefined) {
    errs.push(...validateEnum(spec.persistentVolumeReclaimPolicy, RECLAIM_POLICIES, child(specPath, "persistentVolumeReclaimPolicy")));
  }
  if (spec.volumeMode !== undefined) errs.push(...validateEnum(spec.volumeMode, VOLUME_MODES, child(specPath, "volumeMode")));
  if (spec.storageClassName !== undefined && spec.storageClassName !== "") {
    for (const m of isDNS1123Subdomain(str(spec.storageClassName))) errs.push(invalid(child(specPath, "storageClassName"), spec.storageClassName, m));
  }
  return errs;
}

/** PV update: the volume source never changes; volumeMode never changes. */
export function validatePersistentVolumeUpdate(obj: Rec, old: Rec): FieldError[] {
  const ns = rec(obj.spec);
  const os = rec(old.spec);
  const errs: FieldError[] = [];
  if (PERSISTENT_VOLUME_SOURCE_KEYS.some((k) => !deepEqual(ns[k], os[k]))) {
    errs.push(forbidden(child("spec", "persistentvolumesource"), "spec.persistentvolumesource is forbidden once set"));
  }
  errs.push(...validateImmutableField(ns.volumeMode ?? "Filesystem", os.volumeMode ?? "Filesystem", child("spec", "volumeMode"), deepEqual));
  if (os.nodeAffinity !== undefined) errs.push(...validateImmutableField(ns.nodeAffinity, os.nodeAffinity, child("spec", "nodeAffinity"), deepEqual));
  return errs;
}

export function validatePersistentVolumeClaim(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(obj.spec)) return [required("spec", "")];
  const spec = obj.spec;
  const specPath = "spec";
  errs.push(...validateAccessModes(spec.accessModes, child(specPath, "accessModes"), "at least 1 access mode is required"));
  errs.push(...validateLabelSelector(spec.selector, child(specPath, "selector")));
  const requests = rec(rec(spec.resources).requests);
  const storage = requests.storage;
  const storagePath = key(child(specPath, "resources"), "storage");
  if (storage === undefined) errs.push(required(storagePath, ""));
  else if (!isValidQuantity(storage)) errs.push(invalid(storagePath, storage, QUANTITY_FORMAT_ERROR));
  else if (parseQuantityMilli(storage as string | number) <= 0) errs.push(invalid(storagePath, String(storage), "must be greater than zero"));
  if (spec.volumeMode !== undefined) errs.push(...validateEnum(spec.volumeMode, VOLUME_MODES, child(specPath, "volumeMode")));
  if (spec.storageClassName !== undefined && spec.storageClassName !== "") {
    for (const m of isDNS1123Subdomain(str(spec.storageClassName))) errs.push(invalid(child(specPath, "storageClassName"), spec.storageClassName, m));
  }
  return errs;
}

/**
 * PVC update: the spec is immutable except resources.requests (growth only when bound) and
 * volumeName going from unset to set (binding).
 */
export function validatePersistentVolumeClaimUpdate(obj: Rec, old: Rec): FieldError[] {
  const ns = rec(obj.spec);
  const os = rec(old.spec);
  const a: Rec = { ...ns, resources: undefined };
  const b: Rec = { ...os, resources: undefined };
  if (!str(os.volumeName)) {
    a.volumeName = undefined;
    b.volumeName = undefined;
  }
  // Defaulting may add volumeMode later; treat absent as the default.
  a.volumeMode = a.volumeMode ?? "Filesystem";
  b.volumeMode = b.volumeMode ?? "Filesystem";
  const errs: FieldError[] = [];
  if (!deepEqual(a, b)) {
    errs.push(forbidden("spec", "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"));
  }
  const oldStorage = rec(rec(os.resources).requests).storage;
  const newStorage = rec(rec(ns.resources).requests).storage;
  if (
    str(os.volumeName) &&
    isValidQuantity(oldStorage) &&
    isValidQuantity(newStorage) &&
    parseQuantityMilli(newStorage as string | number) < parseQuantityMilli(oldStorage as string | number)
  ) {
    errs.push(forbidden(key(child("spec", "resources", "requests"), "storage"), "field can not be less than status.capacity"));
  }
  return errs;
}

