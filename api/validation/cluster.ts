// Validation of networking.k8s.io (Ingress, IngressClass), coordination.k8s.io (Lease),
// discovery.k8s.io (EndpointSlice) and storage.k8s.io (StorageClass).

import type { FieldError } from "./field.ts";
import { child, duplicate, forbidden, index, invalid, notSupported, required, tooLong, tooMany } from "./field.ts";
import { validateEnum, validateImmutableField, validateNonnegative } from "./meta.ts";
import {
  isDNS1035Label,
  isDNS1123Label,
  isDNS1123Subdomain,
  isDomainPrefixedPath,
  isIP,
  isIPv4,
  isIPv6,
  isQualifiedName,
  isValidPortName,
  isValidPortNum,
  isWildcardDNS1123Subdomain,
} from "./names.ts";
import { PORT_PROTOCOLS } from "./pod.ts";
import { arr, deepEqual, isRec, rec, str, type Rec } from "./util.ts";

// ---------------------------------------------------------------------------------------------
// Ingress

const PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES = ["/..", "/."];

function validateIngressBackend(b: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const backend = rec(b);
  const hasResource = backend.resource !== undefined && backend.resource !== null;
  const hasService = backend.service !== undefined && backend.service !== null;
  if (hasResource && hasService) return [invalid(fldPath, "", "cannot set both resource and service backends")];
  if (hasResource) {
    const r = rec(backend.resource);
    if (!str(r.kind)) errs.push(required(child(fldPath, "resource", "kind"), ""));
    if (!str(r.name)) errs.push(required(child(fldPath, "resource", "name"), ""));
    return errs;
  }
  if (!hasService) return [invalid(fldPath, "", "resource or service backend is required")];
  const svc = rec(backend.service);
  const name = str(svc.name);
  if (!name) errs.push(required(child(fldPath, "service", "name"), ""));
  else for (const m of isDNS1035Label(name)) errs.push(invalid(child(fldPath, "service", "name"), name, m));
  const port = rec(svc.port);
  const portName = str(port.name);
  const portNumber = port.number;
  const hasNumber = portNumber !== undefined && portNumber !== null && portNumber !== 0;
  if (portName && hasNumber) errs.push(invalid(fldPath, "", "cannot set both port name & port number"));
  else if (portName) for (const m of isValidPortName(portName)) errs.push(invalid(child(fldPath, "service", "port", "name"), portName, m));
  else if (hasNumber) for (const m of isValidPortNum(portNumber)) errs.push(invalid(child(fldPath, "service", "port", "number"), portNumber, m));
  else errs.push(required(fldPath, "port name or number is required"));
  return errs;
}

function validateHTTPIngressPath(p: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const path = rec(p);
  const pathType = path.pathType;
  const value = str(path.path);
  if (pathType === undefined || pathType === null || pathType === "") {
    errs.push(required(child(fldPath, "pathType"), "pathType must be specified"));
  } else if (pathType === "Exact" || pathType === "Prefix") {
    if (!value.startsWith("/")) errs.push(invalid(child(fldPath, "path"), value, "must be an absolute path"));
    if (value.length > 0) {
      for (const seq of INVALID_PATH_SEQUENCES) {
        if (value.includes(seq)) errs.push(invalid(child(fldPath, "path"), value, `must not contain '${seq}'`));
      }
      for (const suf of INVALID_PATH_SUFFIXES) {
        if (value.endsWith(suf)) errs.push(invalid(child(fldPath, "path"), value, `cannot end with '${suf}'`));
      }
    }
  } else if (pathType === "ImplementationSpecific") {
    if (value.length > 0 && !value.startsWith("/")) errs.push(invalid(child(fldPath, "path"), value, "must be an absolute path"));
  } else {
    errs.push(notSupported(child(fldPath, "pathType"), pathType, PATH_TYPES));
  }
  errs.push(...validateIngressBackend(path.backend, child(fldPath, "backend")));
  return errs;
}

export function validateIngress(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(obj.spec)) return [required("spec", "")];
  const spec = obj.spec;
  const rules = arr(spec.rules);
  if (rules.length === 0 && (spec.defaultBackend === undefined || spec.defaultBackend === null)) {
    errs.push(invalid("spec", spec.rules ?? null, "either `defaultBackend` or `rules` must be specified"));
  }
  if (spec.defaultBackend !== undefined && spec.defaultBackend !== null) {
    errs.push(...validateIngressBackend(spec.defaultBackend, child("spec", "defaultBackend")));
  }
  rules.forEach((r, i) => {
    const rule = rec(r);
    const p = index(child("spec", "rules"), i);
    const host = str(rule.host);
    if (host) {
      if (isIP(host)) errs.push(invalid(child(p, "host"), host, "must be a DNS name, not an IP address"));
      const msgs = host.includes("*") ? isWildcardDNS1123Subdomain(host) : isDNS1123Subdomain(host);
      for (const m of msgs) errs.push(invalid(child(p, "host"), host, m));
    }
    if (rule.http !== undefined && rule.http !== null) {
      const paths = arr(rec(rule.http).paths);
      if (paths.length === 0) errs.push(required(child(p, "http", "paths"), ""));
      paths.forEach((hp, j) => errs.push(...validateHTTPIngressPath(hp, index(child(p, "http", "paths"), j))));
    }
  });
  arr(spec.tls).forEach((t, i) => {
    const tls = rec(t);
    arr(tls.hosts).forEach((h, j) => {
      const host = str(h);
      const msgs = host.includes("*") ? isWildcardDNS1123Subdomain(host) : isDNS1123Subdomain(host);
      for (const m of msgs) errs.push(invalid(index(child(index(child("spec", "tls"), i), "hosts"), j), host, m));
    });
  });
  if (spec.ingressClassName !== undefined && spec.ingressClassName !== null) {
    for (const m of isDNS1123Subdomain(str(spec.ingressClassName))) {
      errs.push(invalid(child("spec", "ingressClassName"), spec.ingressClassName, m));
    }
  }
  return errs;
}

const MAX_LEN_INGRESS_CLASS_CONTROLLER = 250;

export function validateIngressClass(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec);
  const controller = str(spec.controller);
  const p = child("spec", "controller");
  if (!controller) errs.push(required(p, ""));
  else if (controller.length > MAX_LEN_INGRESS_CLASS_CONTROLLER) errs.push(tooLong(p, "", MAX_LEN_INGRESS_CLASS_CONTROLLER));
  else for (const m of isDomainPrefixedPath(controller)) errs.push(invalid(p, controller, m));
  if (isRec(spec.parameters)) {
    const params = spec.parameters;
    const pp = child("spec", "parameters");
    if (!str(params.kind)) errs.push(required(child(pp, "kind"), ""));
    if (!str(params.name)) errs.push(required(child(pp, "name"), ""));
    if (params.scope !== undefined) errs.push(...validateEnum(params.scope, ["Cluster", "Namespace"], child(pp, "scope")));
    if (params.scope === "Namespace" && !str(params.namespace)) errs.push(required(child(pp, "namespace"), "`parameters.scope` is set to 'Namespace'"));
  }
  return errs;
}

export function validateIngressClassUpdate(obj: Rec, old: Rec): FieldError[] {
  return validateImmutableField(rec(obj.spec).controller, rec(old.spec).controller, child("spec", "controller"), deepEqual);
}

// ---------------------------------------------------------------------------------------------
// Lease

export function validateLease(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec);
  const lds = spec.leaseDurationSeconds;
  if (lds !== undefined && lds !== null && (typeof lds !== "number" || lds <= 0)) {
    errs.push(invalid(child("spec", "leaseDurationSeconds"), lds, "must be greater than 0"));
  }
  errs.push(...validateNonnegative(spec.leaseTransitions, child("spec", "leaseTransitions")));
  for (const f of ["acquireTime", "renewTime"]) {
    const v = spec[f];
    if (v !== undefined && v !== null && (typeof v !== "string" || Number.isNaN(Date.parse(v)))) {
      errs.push(invalid(child("spec", f), v, "must be an RFC 3339 time"));
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// EndpointSlice

const ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"];
const MAX_ENDPOINTS = 1000;
const MAX_ADDRESSES = 100;
const MAX_PORTS = 20000;

export function validateEndpointSlice(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const addressType = obj.addressType;
  if (addressType === undefined || addressType === null || addressType === "") errs.push(required("addressType", ""));
  else if (!ADDRESS_TYPES.includes(str(addressType))) errs.push(notSupported("addressType", addressType, ADDRESS_TYPES));
  const endpoints = arr(obj.endpoints);
  if (endpoints.length > MAX_ENDPOINTS) errs.push(tooMany("endpoints", endpoints.length, MAX_ENDPOINTS));
  endpoints.forEach((e, i) => {
    const ep = rec(e);
    const p = index("endpoints", i);
    const addresses = arr(ep.addresses);
    if (addresses.length === 0) errs.push(required(child(p, "addresses"), "must contain at least 1 address"));
    else if (addresses.length > MAX_ADDRESSES) errs.push(tooMany(child(p, "addresses"), addresses.length, MAX_ADDRESSES));
    addresses.forEach((a, j) => {
      const addr = str(a);
      const ap = index(child(p, "addresses"), j);
      if (addressType === "IPv4" && !isIPv4(addr)) errs.push(invalid(ap, a, "must be a valid IPv4 address"));
      else if (addressType === "IPv6" && !isIPv6(addr)) errs.push(invalid(ap, a, "must be a valid IPv6 address"));
      else if (addressType === "FQDN") for (const m of isDNS1123Subdomain(addr)) errs.push(invalid(ap, a, m));
    });
    if (ep.hostname !== undefined && ep.hostname !== null && ep.hostname !== "") {
      for (const m of isDNS1123Label(str(ep.hostname))) errs.push(invalid(child(p, "hostname"), ep.hostname, m));
    }
    if (ep.nodeName !== undefined && ep.nodeName !== null && ep.nodeName !== "") {
      for (const m of isDNS1123Subdomain(str(ep.nodeName))) errs.push(invalid(child(p, "nodeName"), ep.nodeName, m));
    }
  });
  const ports = arr(obj.ports);
  if (ports.length > MAX_PORTS) errs.push(tooMany("ports", ports.length, MAX_PORTS));
  const names = new Set<string>();
  ports.forEach((pt, i) => {
    const port = rec(pt);
    const p = index("ports", i);
    const name = str(port.name);
    if (name) for (const m of isDNS1123Label(name)) errs.push(invalid(child(p, "name"), name, m));
    if (names.has(name)) errs.push(duplicate(child(p, "name"), name));
    names.add(name);
    if (port.protocol !== undefined && port.protocol !== null) errs.push(...validateEnum(port.protocol, PORT_PROTOCOLS, child(p, "protocol")));
    else errs.push(required(child(p, "protocol"), ""));
    if (port.port !== undefined && port.port !== null) {
      for (const m of isValidPortNum(port.port)) errs.push(invalid(child(p, "port"), port.port, m));
    }
  });
  return errs;
}

export function validateEndpointSliceUpdate(obj: Rec, old: Rec): FieldError[] {
  return validateImmutableField(obj.addressType, old.addressType, "addressType", deepEqual);
}

// ---------------------------------------------------------------------------------------------
// StorageClass

export function validateStorageClass(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const provisioner = str(obj.provisioner);
  if (!provisioner) errs.push(required("provisioner", ""));
  else {
    for (const m of isQualifiedName(provisioner.toLowerCase())) errs.push(invalid("provisioner", provisioner, m));
  }
  const params = obj.parameters;
  if (params !== undefined && params !== null) {
    if (!isRec(params)) errs.push(invalid("parameters", params, "must be a map of strings"));
    else {
      if (Object.keys(params).length > 512) errs.push(tooLong("parameters", "", 512));
      let size = 0;
      for (const [k, v] of Object.entries(params)) {
        if (!k) errs.push(invalid("parameters", k, "field can not be empty."));
        size += k.length + str(v).length;
      }
      if (size > 256 * 1024) errs.push(tooLong("parameters", "", 256 * 1024));
    }
  }
  if (obj.reclaimPolicy !== undefined && obj.reclaimPolicy !== null) {
    errs.push(...validateEnum(obj.reclaimPolicy, ["Delete", "Retain"], "reclaimPolicy"));
  }
  if (obj.volumeBindingMode !== undefined && obj.volumeBindingMode !== null) {
    errs.push(...validateEnum(obj.volumeBindingMode, ["Immediate", "WaitForFirstConsumer"], "volumeBindingMode"));
  }
  arr(obj.allowedTopologies).forEach((t, i) => {
    const p = index("allowedTopologies", i);
    const exprs = arr(rec(t).matchLabelExpressions);
    if (exprs.length === 0) errs.push(required(child(p, "matchLabelExpressions"), "must have at least one label requirement"));
    exprs.forEach((e, j) => {
      const ep = index(child(p, "matchLabelExpressions"), j);
      for (const m of isQualifiedName(str(rec(e).key))) errs.push(invalid(child(ep, "key"), rec(e).key, m));
      if (arr(rec(e).values).length === 0) errs.push(required(child(ep, "values"), "must specify as least one value"));
    });
  });
  return errs;
}

export function validateStorageClassUpdate(obj: Rec, old: Rec): FieldError[] {
  const errs: FieldError[] = [];
  if (!deepEqual(obj.parameters ?? {}, old.parameters ?? {})) errs.push(forbidden("parameters", "updates to parameters are forbidden."));
  if (obj.provisioner !== old.provisioner) errs.push(forbidden("provisioner", "updates to provisioner are forbidden."));
  if ((obj.reclaimPolicy ?? "Delete") !== (old.reclaimPolicy ?? "Delete")) errs.push(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."));
  errs.push(...validateImmutableField(obj.volumeBindingMode ?? "Immediate", old.volumeBindingMode ?? "Immediate", "volumeBindingMode", deepEqual));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// VolumeAttachment and CSIDriver

function validateCSIDriverName(name: unknown, fldPath: string): FieldError[] {
  const s = str(name);
  if (!s) return [required(fldPath, "")];
  if (s.length > 63) return [tooLong(fldPath, s, 63)];
  return isDNS1123Subdomain(s.toLowerCase()).map((m) => invalid(fldPath, s, m));
}

export function validateVolumeAttachment(obj: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const spec = rec(obj.spec);
  errs.push(...validateCSIDriverName(spec.attacher, child("spec", "attacher")));
  const src = rec(spec.source);
  const hasPV = str(src.persistentVolumeName) !== "";
  const hasInline = isRec(src.inlineVolumeSpec);
  if (hasPV && hasInline) errs.push(forbidden(child("spec", "source"), "must specify exactly one of persistentVolumeName and inlineVolumeSpec"));
  else if (!hasPV && !hasInline) errs.push(required(child("spec", "source"), "must specify exactly one of persistentVolumeName and inlineVolumeSpec"));
  const node = str(spec.nodeName);
  if (!node) errs.push(required(child("spec", "nodeName"), ""));
  else for (const m of isDNS1123Subdomain(node)) errs.push(invalid(child("spec", "nodeName"), node, m));
  return errs;
}

/** The spec of a VolumeAttachment never changes (the attach/detach controller deletes and recreates). */
export function validateVolumeAttachmentUpdate(obj: Rec, old: Rec): FieldError[] {
  return deepEqual(obj.spec, old.spec) ? [] : [invalid("spec", obj.spec, "field is immutable")];
}

export function validateCSIDriver(obj: Rec): FieldError[] {
  const errs: FieldError[] = [...validateCSIDriverName(rec(obj.metadata).name, child("metadata", "name"))];
  const spec = rec(obj.spec);
  if (spec.attachRequired === undefined || spec.attachRequired === null) errs.push(required(child("spec", "attachRequired"), ""));
  if (spec.fsGroupPolicy !== undefined) errs.push(...validateEnum(spec.fsGroupPolicy, ["File", "None", "ReadWriteOnceWithFSType"], child("spec", "fsGroupPolicy")));
  arr(spec.volumeLifecycleModes).forEach((m, i) => errs.push(...validateEnum(m, ["Ephemeral", "Persistent"], index(child("spec", "volumeLifecycleModes"), i))));
  return errs;
}

/** attachRequired, fsGroupPolicy and volumeLifecycleModes are immutable (the attach and mount paths depend on them). */
export function validateCSIDriverUpdate(obj: Rec, old: Rec): FieldError[] {
  const n = rec(obj.spec);
  const o = rec(old.spec);
  return [
    ...validateImmutableField(n.attachRequired, o.attachRequired, child("spec", "attachRequired"), deepEqual),
    ...validateImmutableField(n.fsGroupPolicy, o.fsGroupPolicy, child("spec", "fsGroupPolicy"), deepEqual),
    ...validateImmutableField(n.volumeLifecycleModes, o.volumeLifecycleModes, child("spec", "volumeLifecycleModes"), deepEqual),
  ];
}
