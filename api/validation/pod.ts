// Pod and pod-template validation (k8s.io/kubernetes/pkg/apis/core/validation: ValidatePodSpec and
// friends), including the pod update rules.

import { VOLUME_SOURCE_KEYS } from "../core/v1.ts";
import { isValidQuantity, parseQuantityMilli, QUANTITY_FORMAT_ERROR } from "../quantity.ts";
import type { FieldError } from "./field.ts";
import { child, duplicate, forbidden, index, invalid, key, notFound, notSupported, required } from "./field.ts";
import {
  validateAnnotations,
  validateEnum,
  validateLabelName,
  validateLabelSelector,
  validateLabels,
  validateNonnegative,
} from "./meta.ts";
import {
  inclusiveRangeError,
  isDNS1123Label,
  isDNS1123Subdomain,
  isEnvVarName,
  isQualifiedName,
  isValidLabelValue,
  isValidPortName,
  isValidPortNum,
} from "./names.ts";
import { arr, deepEqual, clone, isInt, isRec, rec, str, type Rec } from "./util.ts";

export const RESTART_POLICIES = ["Always", "OnFailure", "Never"];
const DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
/** sets.List order (sorted), as Kubernetes prints them. */
export const PORT_PROTOCOLS = ["SCTP", "TCP", "UDP"];
const PULL_POLICIES = ["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"];
const TOLERATION_OPERATORS = ["Equal", "Exists"];
const TAINT_EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"];
const MAX_INT32 = 2147483647;

/** ValidatePortNumOrName for probe/handler ports and targetPorts. */
export function validatePortNumOrName(port: unknown, fldPath: string): FieldError[] {
  if (typeof port === "number") return isValidPortNum(port).map((m) => invalid(fldPath, port, m));
  if (typeof port === "string") {
    if (port === "") return [required(fldPath, "")];
    return isValidPortName(port).map((m) => invalid(fldPath, port, m));
  }
  if (port === undefined || port === null) return [required(fldPath, "")];
  return [invalid(fldPath, port, "must be an integer or string")];
}

// ---------------------------------------------------------------------------------------------
// Volumes

function validateVolumes(volumes: unknown[], fldPath: string): { errs: FieldError[]; names: Set<string> } {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  volumes.forEach((v, i) => {
    const vol = rec(v);
    const p = index(fldPath, i);
    const name = vol.name;
    if (typeof name !== "string" || name === "") {
      errs.push(required(child(p, "name"), ""));
    } else {
      for (const m of isDNS1123Label(name)) errs.push(invalid(child(p, "name"), name, m));
      if (names.has(name)) errs.push(duplicate(child(p, "name"), name));
      else names.add(name);
    }
    const sources = VOLUME_SOURCE_KEYS.filter((k) => vol[k] !== undefined && vol[k] !== null);
    if (sources.length === 0) errs.push(required(p, "must specify a volume type"));
    else if (sources.length > 1) errs.push(forbidden(child(p, sources[1]), "may not specify more than 1 volume type"));
    else errs.push(...validateVolumeSource(sources[0], rec(vol[sources[0]]), child(p, sources[0])));
  });
  return { errs, names };
}

function validateVolumeSource(kind: (typeof VOLUME_SOURCE_KEYS)[number], src: Rec, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  switch (kind) {
    case "hostPath":
      if (!str(src.path)) errs.push(required(child(fldPath, "path"), ""));
      break;
    case "persistentVolumeClaim":
      if (!str(src.claimName)) errs.push(required(child(fldPath, "claimName"), ""));
      break;
    case "secret":
      if (src.secretName !== undefined && str(src.secretName) !== "") {
        for (const m of isDNS1123Subdomain(str(src.secretName))) errs.push(invalid(child(fldPath, "secretName"), src.secretName, m));
      }
      errs.push(...validateKeyToPaths(src.items, child(fldPath, "items")));
      errs.push(...validateMode(src.defaultMode, child(fldPath, "defaultMode")));
      break;
    case "configMap":
      if (src.name !== undefined && str(src.name) !== "") {
        for (const m of isDNS1123Subdomain(str(src.name))) errs.push(invalid(child(fldPath, "name"), src.name, m));
      }
      errs.push(...validateKeyToPaths(src.items, child(fldPath, "items")));
      errs.push(...validateMode(src.defaultMode, child(fldPath, "defaultMode")));
      break;
    case "emptyDir":
      if (src.medium !== undefined && src.medium !== "" && src.medium !== "Memory") {
        errs.push(notSupported(child(fldPath, "medium"), src.medium, ["", "Memory"]));
      }
      if (src.sizeLimit !== undefined) errs.push(...validateQuantityField(src.sizeLimit, child(fldPath, "sizeLimit")));
      break;
    case "nfs":
      if (!str(src.server)) errs.push(required(child(fldPath, "server"), ""));
      if (!str(src.path)) errs.push(required(child(fldPath, "path"), ""));
      else if (!str(src.path).startsWith("/")) errs.push(invalid(child(fldPath, "path"), src.path, "must be an absolute path"));
      break;
    case "csi":
      if (!str(src.driver)) errs.push(required(child(fldPath, "driver"), ""));
      break;
    default:
      break;
  }
  return errs;
}

function validateMode(mode: unknown, fldPath: string): FieldError[] {
  if (mode === undefined || mode === null) return [];
  if (!isInt(mode) || mode < 0 || mode > 0o777) {
    return [invalid(fldPath, mode, "must be a number between 0 and 0777 (octal), both inclusive")];
  }
  return [];
}

function validateLocalDescendingPath(path: string, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (path.startsWith("/")) errs.push(invalid(fldPath, path, "must be a relative path"));
  if (path.split("/").includes("..")) errs.push(invalid(fldPath, path, "must not contain '..'"));
  return errs;
}

function validateKeyToPaths(items: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  arr(items).forEach((it, i) => {
    const item = rec(it);
    const p = index(fldPath, i);
    if (!str(item.key)) errs.push(required(child(p, "key"), ""));
    if (!str(item.path)) errs.push(required(child(p, "path"), ""));
    else errs.push(...validateLocalDescendingPath(str(item.path), child(p, "path")));
    errs.push(...validateMode(item.mode, child(p, "mode")));
  });
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Containers

function validateQuantityField(q: unknown, fldPath: string): FieldError[] {
  if (!isValidQuantity(q)) return [invalid(fldPath, q, QUANTITY_FORMAT_ERROR)];
  return [];
}

const STANDARD_CONTAINER_RESOURCES = new Set(["cpu", "memory", "ephemeral-storage"]);

function validateResourceName(name: string, fldPath: string): FieldError[] {
  const errs = isQualifiedName(name).map((m) => invalid(fldPath, name, m));
  if (errs.length) return errs;
  if (!name.includes("/") && !STANDARD_CONTAINER_RESOURCES.has(name) && !name.startsWith("hugepages-")) {
    return [invalid(fldPath, name, "must be a standard resource for containers")];
  }
  return [];
}

/** ValidateResourceRequirements: names, non-negative parseable quantities, requests ≤ limits. */
export function validateResourceRequirements(res: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (res === undefined || res === null) return errs;
  const r = rec(res);
  const limitsPath = child(fldPath, "limits");
  const requestsPath = child(fldPath, "requests");
  const limitMilli = new Map<string, number>();
  for (const [name, q] of Object.entries(rec(r.limits))) {
    const p = key(limitsPath, name);
    errs.push(...validateResourceName(name, p));
    if (!isValidQuantity(q)) {
      errs.push(invalid(p, q, QUANTITY_FORMAT_ERROR));
      continue;
    }
    const milli = parseQuantityMilli(q as string | number);
    if (milli < 0) errs.push(invalid(p, String(q), "must be greater than or equal to 0"));
    limitMilli.set(name, milli);
  }
  for (const [name, q] of Object.entries(rec(r.requests))) {
    const p = key(requestsPath, name);
    errs.push(...validateResourceName(name, p));
    if (!isValidQuantity(q)) {
      errs.push(invalid(p, q, QUANTITY_FORMAT_ERROR));
      continue;
    }
    const milli = parseQuantityMilli(q as string | number);
    if (milli < 0) errs.push(invalid(p, String(q), "must be greater than or equal to 0"));
    const limit = limitMilli.get(name);
    if (limit !== undefined && milli > limit) {
      errs.push(invalid(p, String(q), `must be less than or equal to ${name} limit of ${String(rec(r.limits)[name])}`));
    }
  }
  return errs;
}

function validateEnv(env: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  arr(env).forEach((e, i) => {
    const ev = rec(e);
    const p = index(fldPath, i);
    const name = ev.name;
    if (typeof name !== "string" || name === "") errs.push(required(child(p, "name"), ""));
    else for (const m of isEnvVarName(name)) errs.push(invalid(child(p, "name"), name, m));
    if (ev.valueFrom !== undefined && ev.valueFrom !== null) {
      const vf = rec(ev.valueFrom);
      const vfp = child(p, "valueFrom");
      const kinds = ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"].filter((k) => vf[k] !== undefined && vf[k] !== null);
      if (str(ev.value) !== "" && kinds.length > 0) {
        errs.push(invalid(vfp, "", "may not be specified when `value` is not empty"));
      }
      if (kinds.length === 0) {
        errs.push(invalid(vfp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
      } else if (kinds.length > 1) {
        errs.push(invalid(vfp, "", "may not have more than one field specified at a time"));
      } else {
        const src = rec(vf[kinds[0]]);
        const sp = child(vfp, kinds[0]);
        if (kinds[0] === "fieldRef" && !str(src.fieldPath)) errs.push(required(child(sp, "fieldPath"), ""));
        if (kinds[0] === "resourceFieldRef" && !str(src.resource)) errs.push(required(child(sp, "resource"), ""));
        if ((kinds[0] === "configMapKeyRef" || kinds[0] === "secretKeyRef") && !str(src.key)) errs.push(required(child(sp, "key"), ""));
      }
    }
  });
  return errs;
}

function validateVolumeMounts(mounts: unknown, volumes: Set<string>, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const paths = new Set<string>();
  arr(mounts).forEach((m, i) => {
    const mnt = rec(m);
    const p = index(fldPath, i);
    const name = str(mnt.name);
    if (!name) errs.push(required(child(p, "name"), ""));
    else if (!volumes.has(name)) errs.push(notFound(child(p, "name"), name));
    const mountPath = str(mnt.mountPath);
    if (!mountPath) errs.push(required(child(p, "mountPath"), ""));
    else if (paths.has(mountPath)) errs.push(invalid(child(p, "mountPath"), mountPath, "must be unique"));
    else paths.add(mountPath);
    if (mnt.subPath !== undefined && str(mnt.subPath) !== "") {
      errs.push(...validateLocalDescendingPath(str(mnt.subPath), child(p, "subPath")));
    }
  });
  return errs;
}

function validateHandler(h: Rec, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const kinds = ["exec", "httpGet", "tcpSocket", "grpc"].filter((k) => h[k] !== undefined && h[k] !== null);
  if (kinds.length === 0) return [required(fldPath, "must specify a handler type")];
  if (kinds.length > 1) return [forbidden(child(fldPath, kinds[1]), "may not specify more than 1 handler type")];
  const src = rec(h[kinds[0]]);
  const p = child(fldPath, kinds[0]);
  switch (kinds[0]) {
    case "exec":
      if (arr(src.command).length === 0) errs.push(required(child(p, "command"), ""));
      break;
    case "httpGet":
      errs.push(...validatePortNumOrName(src.port, child(p, "port")));
      if (src.scheme !== undefined && src.scheme !== "HTTP" && src.scheme !== "HTTPS") {
        errs.push(notSupported(child(p, "scheme"), src.scheme, ["HTTP", "HTTPS"]));
      }
      break;
    case "tcpSocket":
      errs.push(...validatePortNumOrName(src.port, child(p, "port")));
      break;
    case "grpc":
      errs.push(...isValidPortNum(src.port).map((m) => invalid(child(p, "port"), src.port, m)));
      break;
  }
  return errs;
}

function validateProbe(probe: unknown, fldPath: string, kind: "liveness" | "readiness" | "startup"): FieldError[] {
  if (probe === undefined || probe === null) return [];
  const pr = rec(probe);
  const errs = validateHandler(pr, fldPath);
  for (const f of ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"]) {
    errs.push(...validateNonnegative(pr[f], child(fldPath, f)));
  }
  if (pr.terminationGracePeriodSeconds !== undefined) {
    if (!isInt(pr.terminationGracePeriodSeconds) || pr.terminationGracePeriodSeconds <= 0) {
      errs.push(invalid(child(fldPath, "terminationGracePeriodSeconds"), pr.terminationGracePeriodSeconds, "must be greater than 0"));
    }
  }
  if (kind !== "readiness" && pr.successThreshold !== undefined && pr.successThreshold !== 1) {
    errs.push(invalid(child(fldPath, "successThreshold"), pr.successThreshold, "must be 1"));
  }
  return errs;
}

interface ContainerContext {
  volumes: Set<string>;
  /** Names seen so far across init containers and containers. */
  names: Set<string>;
  /** Container port names seen so far across the pod (must be unique per pod). */
  portNames: Set<string>;
}

function validateContainer(c: unknown, fldPath: string, ctx: ContainerContext, isInit: boolean): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(c)) return [invalid(fldPath, c, "must be a container object")];
  const name = c.name;
  const namePath = child(fldPath, "name");
  if (typeof name !== "string" || name === "") {
    errs.push(required(namePath, ""));
  } else {
    for (const m of isDNS1123Label(name)) errs.push(invalid(namePath, name, m));
    if (ctx.names.has(name)) errs.push(duplicate(namePath, name));
    else ctx.names.add(name);
  }
  const image = c.image;
  if (typeof image !== "string" || image === "") errs.push(required(child(fldPath, "image"), ""));
  else if (image.trim() !== image) errs.push(invalid(child(fldPath, "image"), image, "must not have leading or trailing whitespace"));

  arr(c.ports).forEach((pt, i) => {
    const port = rec(pt);
    const p = index(child(fldPath, "ports"), i);
    if (port.name !== undefined && port.name !== "") {
      const pn = str(port.name);
      for (const m of isValidPortName(pn)) errs.push(invalid(child(p, "name"), port.name, m));
      if (ctx.portNames.has(pn)) errs.push(duplicate(child(p, "name"), pn));
      else ctx.portNames.add(pn);
    }
    if (port.containerPort === undefined || port.containerPort === 0) errs.push(required(child(p, "containerPort"), ""));
    else for (const m of isValidPortNum(port.containerPort)) errs.push(invalid(child(p, "containerPort"), port.containerPort, m));
    if (port.hostPort !== undefined && port.hostPort !== 0) {
      for (const m of isValidPortNum(port.hostPort)) errs.push(invalid(child(p, "hostPort"), port.hostPort, m));
    }
    errs.push(...validateEnum(port.protocol, PORT_PROTOCOLS, child(p, "protocol")));
  });
  errs.push(...validateEnv(c.env, child(fldPath, "env")));
  errs.push(...validateVolumeMounts(c.volumeMounts, ctx.volumes, child(fldPath, "volumeMounts")));
  errs.push(...validateResourceRequirements(c.resources, child(fldPath, "resources")));
  if (c.imagePullPolicy !== undefined) errs.push(...validateEnum(c.imagePullPolicy, PULL_POLICIES, child(fldPath, "imagePullPolicy")));
  if (c.terminationMessagePolicy !== undefined) {
    errs.push(...validateEnum(c.terminationMessagePolicy, TERMINATION_MESSAGE_POLICIES, child(fldPath, "terminationMessagePolicy")));
  }
  const isSidecar = isInit && c.restartPolicy === "Always";
  if (isInit && c.restartPolicy !== undefined && c.restartPolicy !== "Always") {
    errs.push(notSupported(child(fldPath, "restartPolicy"), c.restartPolicy, ["Always"]));
  } else if (!isInit && c.restartPolicy !== undefined) {
    errs.push(forbidden(child(fldPath, "restartPolicy"), "may not be set for non-init containers"));
  }
  if (isInit && !isSidecar) {
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      if (c[probe] !== undefined && c[probe] !== null) errs.push(forbidden(child(fldPath, probe), "may not be set for init containers without restartPolicy=Always"));
    }
  } else {
    errs.push(...validateProbe(c.livenessProbe, child(fldPath, "livenessProbe"), "liveness"));
    errs.push(...validateProbe(c.readinessProbe, child(fldPath, "readinessProbe"), "readiness"));
    errs.push(...validateProbe(c.startupProbe, child(fldPath, "startupProbe"), "startup"));
  }
  if (isRec(c.lifecycle)) {
    for (const hook of ["postStart", "preStop"]) {
      const h = c.lifecycle[hook];
      if (h === undefined || h === null) continue;
      const hr = rec(h);
      if (hr.sleep !== undefined) {
        const secs = rec(hr.sleep).seconds;
        if (!isInt(secs) || secs < 0) errs.push(invalid(child(fldPath, "lifecycle", hook, "sleep", "seconds"), secs, "must be greater than or equal to 0"));
      } else {
        errs.push(...validateHandler(hr, child(fldPath, "lifecycle", hook)));
      }
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Scheduling fields

/** ValidateTolerations. */
export function validateTolerations(tolerations: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  arr(tolerations).forEach((t, i) => {
    const tol = rec(t);
    const p = index(fldPath, i);
    const k = str(tol.key);
    if (k) errs.push(...validateLabelName(k, child(p, "key")));
    if (!k && tol.operator !== "Exists") {
      errs.push(invalid(child(p, "operator"), tol.operator ?? "", "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
    }
    if (tol.tolerationSeconds !== undefined && tol.tolerationSeconds !== null && tol.effect !== "NoExecute") {
      errs.push(invalid(child(p, "effect"), tol.effect ?? "", "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    }
    switch (tol.operator) {
      case undefined:
      case "":
      case "Equal":
        if (tol.value !== undefined) for (const m of isValidLabelValueMsgs(tol.value)) errs.push(invalid(child(p, "operator"), tol.value, m));
        break;
      case "Exists":
        if (str(tol.value) !== "") errs.push(invalid(child(p, "operator"), tol, "value must be empty when `operator` is 'Exists'"));
        break;
      default:
        errs.push(notSupported(child(p, "operator"), tol.operator, TOLERATION_OPERATORS));
    }
    if (tol.effect !== undefined && tol.effect !== "" && !TAINT_EFFECTS.includes(str(tol.effect))) {
      errs.push(notSupported(child(p, "effect"), tol.effect, TAINT_EFFECTS));
    }
  });
  return errs;
}

function isValidLabelValueMsgs(v: unknown): string[] {
  // Toleration and taint values follow label-value syntax.
  return typeof v === "string" ? isValidLabelValue(v) : ["must be a string"];
}

/** ValidateTaints (nodes). */
export function validateTaints(taints: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  arr(taints).forEach((t, i) => {
    const taint = rec(t);
    const p = index(fldPath, i);
    errs.push(...validateLabelName(str(taint.key), child(p, "key")));
    if (taint.value !== undefined) for (const m of isValidLabelValueMsgs(taint.value)) errs.push(invalid(child(p, "value"), taint.value, m));
    errs.push(...validateEnum(taint.effect, TAINT_EFFECTS, child(p, "effect")));
    const k = `${str(taint.key)}:${str(taint.effect)}`;
    if (seen.has(k)) errs.push(duplicate(p, taint));
    seen.add(k);
  });
  if (errs.some((e) => e.type === "FieldValueDuplicate")) {
    return errs.map((e) => (e.type === "FieldValueDuplicate" ? { ...e, detail: "taints must be unique by key and effect pair" } : e));
  }
  return errs;
}

const NODE_SELECTOR_OPERATORS = ["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"];

function validateNodeSelectorTerm(term: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const t = rec(term);
  for (const which of ["matchExpressions", "matchFields"]) {
    arr(t[which]).forEach((r, j) => {
      const req = rec(r);
      const p = index(child(fldPath, which), j);
      const values = arr(req.values);
      switch (req.operator) {
        case "In":
        case "NotIn":
          if (values.length === 0) errs.push(required(child(p, "values"), "must be specified when `operator` is 'In' or 'NotIn'"));
          break;
        case "Exists":
        case "DoesNotExist":
          if (values.length > 0) errs.push(forbidden(child(p, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
          break;
        case "Gt":
        case "Lt":
          if (values.length !== 1) errs.push(required(child(p, "values"), "must be specified single value when `operator` is 'Lt' or 'Gt'"));
          break;
        default:
          errs.push(notSupported(child(p, "operator"), req.operator, NODE_SELECTOR_OPERATORS));
      }
      if (which === "matchExpressions") errs.push(...validateLabelName(str(req.key), child(p, "key")));
      else if (str(req.key) !== "metadata.name") errs.push(notSupported(child(p, "key"), req.key, ["metadata.name"]));
    });
  }
  return errs;
}

function validatePodAffinityTerm(term: unknown, fldPath: string): FieldError[] {
  const t = rec(term);
  const errs = validateLabelSelector(t.labelSelector, child(fldPath, "labelSelector"));
  errs.push(...validateLabelSelector(t.namespaceSelector, child(fldPath, "namespaceSelector")));
  arr(t.namespaces).forEach((n, i) => {
    for (const m of isDNS1123Label(str(n))) errs.push(invalid(index(child(fldPath, "namespaces"), i), n, m));
  });
  if (!str(t.topologyKey)) errs.push(required(child(fldPath, "topologyKey"), "can not be empty"));
  else errs.push(...validateLabelName(str(t.topologyKey), child(fldPath, "topologyKey")));
  return errs;
}

function validateWeight(w: unknown, fldPath: string): FieldError[] {
  return isInt(w) && w >= 1 && w <= 100 ? [] : [invalid(fldPath, w, inclusiveRangeError(1, 100))];
}

function validateAffinity(aff: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(aff)) return errs;
  const na = rec(aff.nodeAffinity);
  const naPath = child(fldPath, "nodeAffinity");
  if (na.requiredDuringSchedulingIgnoredDuringExecution !== undefined) {
    const p = child(naPath, "requiredDuringSchedulingIgnoredDuringExecution");
    const terms = arr(rec(na.requiredDuringSchedulingIgnoredDuringExecution).nodeSelectorTerms);
    if (terms.length === 0) errs.push(required(child(p, "nodeSelectorTerms"), "must have at least one node selector term"));
    terms.forEach((t, i) => errs.push(...validateNodeSelectorTerm(t, index(child(p, "nodeSelectorTerms"), i))));
  }
  arr(na.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
    const p = index(child(naPath, "preferredDuringSchedulingIgnoredDuringExecution"), i);
    errs.push(...validateWeight(rec(t).weight, child(p, "weight")));
    errs.push(...validateNodeSelectorTerm(rec(t).preference, child(p, "preference")));
  });
  for (const kind of ["podAffinity", "podAntiAffinity"]) {
    const pa = rec(aff[kind]);
    const paPath = child(fldPath, kind);
    arr(pa.requiredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
      errs.push(...validatePodAffinityTerm(t, index(child(paPath, "requiredDuringSchedulingIgnoredDuringExecution"), i)));
    });
    arr(pa.preferredDuringSchedulingIgnoredDuringExecution).forEach((t, i) => {
      const p = index(child(paPath, "preferredDuringSchedulingIgnoredDuringExecution"), i);
      errs.push(...validateWeight(rec(t).weight, child(p, "weight")));
      errs.push(...validatePodAffinityTerm(rec(t).podAffinityTerm, child(p, "podAffinityTerm")));
    });
  }
  return errs;
}

function validateTopologySpreadConstraints(tscs: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  arr(tscs).forEach((c, i) => {
    const tsc = rec(c);
    const p = index(fldPath, i);
    if (!isInt(tsc.maxSkew) || tsc.maxSkew <= 0) errs.push(invalid(child(p, "maxSkew"), tsc.maxSkew, "must be greater than zero"));
    if (!str(tsc.topologyKey)) errs.push(required(child(p, "topologyKey"), "can not be empty"));
    else errs.push(...validateLabelName(str(tsc.topologyKey), child(p, "topologyKey")));
    errs.push(...validateEnum(tsc.whenUnsatisfiable, ["DoNotSchedule", "ScheduleAnyway"], child(p, "whenUnsatisfiable")));
    const k = `${str(tsc.topologyKey)}/${str(tsc.whenUnsatisfiable)}`;
    if (seen.has(k)) errs.push(duplicate(p, `{${str(tsc.topologyKey)}, ${str(tsc.whenUnsatisfiable)}}`));
    seen.add(k);
    errs.push(...validateLabelSelector(tsc.labelSelector, child(p, "labelSelector")));
    if (tsc.minDomains !== undefined) {
      if (!isInt(tsc.minDomains) || tsc.minDomains <= 0) errs.push(invalid(child(p, "minDomains"), tsc.minDomains, "must be greater than 0"));
      else if (tsc.whenUnsatisfiable !== "DoNotSchedule") {
        errs.push(invalid(child(p, "minDomains"), tsc.minDomains, `can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ${str(tsc.whenUnsatisfiable)}`));
      }
    }
  });
  return errs;
}

// ---------------------------------------------------------------------------------------------
// PodSpec

export interface PodSpecOptions {
  /** Restart policies allowed (workload templates narrow this). */
  restartPolicies?: readonly string[];
}

/** ValidatePodSpec. */
export function validatePodSpec(spec: unknown, fldPath: string, opts: PodSpecOptions = {}): FieldError[] {
  const errs: FieldError[] = [];
  if (!isRec(spec)) return [required(fldPath, "")];
  const { errs: volErrs, names: volumes } = validateVolumes(arr(spec.volumes), child(fldPath, "volumes"));
  errs.push(...volErrs);
  const ctx: ContainerContext = { volumes, names: new Set(), portNames: new Set() };
  arr(spec.initContainers).forEach((c, i) => errs.push(...validateContainer(c, index(child(fldPath, "initContainers"), i), ctx, true)));
  const containers = arr(spec.containers);
  if (containers.length === 0) errs.push(required(child(fldPath, "containers"), ""));
  containers.forEach((c, i) => errs.push(...validateContainer(c, index(child(fldPath, "containers"), i), ctx, false)));

  const rp = spec.restartPolicy;
  if (rp === undefined || rp === null || rp === "") errs.push(required(child(fldPath, "restartPolicy"), ""));
  else if (!RESTART_POLICIES.includes(str(rp))) errs.push(notSupported(child(fldPath, "restartPolicy"), rp, RESTART_POLICIES));
  else if (opts.restartPolicies && !opts.restartPolicies.includes(str(rp))) {
    errs.push(notSupported(child(fldPath, "restartPolicy"), rp, opts.restartPolicies));
  }
  if (spec.dnsPolicy !== undefined) errs.push(...validateEnum(spec.dnsPolicy, DNS_POLICIES, child(fldPath, "dnsPolicy")));
  if (spec.dnsPolicy === "None" && !isRec(spec.dnsConfig)) {
    errs.push(required(child(fldPath, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"));
  }
  errs.push(...validateLabels(spec.nodeSelector, child(fldPath, "nodeSelector")));
  if (spec.terminationGracePeriodSeconds !== undefined) {
    if (!isInt(spec.terminationGracePeriodSeconds)) {
      errs.push(invalid(child(fldPath, "terminationGracePeriodSeconds"), spec.terminationGracePeriodSeconds, "must be an integer"));
    }
  }
  if (spec.activeDeadlineSeconds !== undefined && spec.activeDeadlineSeconds !== null) {
    const v = spec.activeDeadlineSeconds;
    if (!isInt(v) || v < 1 || v > MAX_INT32) {
      errs.push(invalid(child(fldPath, "activeDeadlineSeconds"), v, inclusiveRangeError(1, MAX_INT32)));
    }
  }
  for (const f of ["serviceAccountName", "nodeName", "priorityClassName", "runtimeClassName"]) {
    const v = spec[f];
    if (v !== undefined && v !== "") {
      for (const m of isDNS1123Subdomain(str(v))) errs.push(invalid(child(fldPath, f), v, m));
    }
  }
  if (spec.hostname !== undefined && spec.hostname !== "") {
    for (const m of isDNS1123Label(str(spec.hostname))) errs.push(invalid(child(fldPath, "hostname"), spec.hostname, m));
  }
  if (spec.subdomain !== undefined && spec.subdomain !== "") {
    for (const m of isDNS1123Label(str(spec.subdomain))) errs.push(invalid(child(fldPath, "subdomain"), spec.subdomain, m));
  }
  if (spec.schedulerName !== undefined && spec.schedulerName !== "") {
    for (const m of isDNS1123Subdomain(str(spec.schedulerName))) errs.push(invalid(child(fldPath, "schedulerName"), spec.schedulerName, m));
  }
  errs.push(...validateTolerations(spec.tolerations, child(fldPath, "tolerations")));
  errs.push(...validateAffinity(spec.affinity, child(fldPath, "affinity")));
  errs.push(...validateTopologySpreadConstraints(spec.topologySpreadConstraints, child(fldPath, "topologySpreadConstraints")));
  arr(spec.imagePullSecrets).forEach((s, i) => {
    if (!str(rec(s).name)) errs.push(required(child(index(child(fldPath, "imagePullSecrets"), i), "name"), ""));
  });
  if (spec.preemptionPolicy !== undefined) {
    errs.push(...validateEnum(spec.preemptionPolicy, ["Never", "PreemptLowerPriority"], child(fldPath, "preemptionPolicy")));
  }
  const gates = new Set<string>();
  arr(spec.schedulingGates).forEach((g, i) => {
    const p = child(index(child(fldPath, "schedulingGates"), i), "name");
    const n = str(rec(g).name);
    for (const m of isQualifiedName(n)) errs.push(invalid(p, n, m));
    if (gates.has(n)) errs.push(duplicate(p, n));
    gates.add(n);
  });
  return errs;
}

/** ValidatePodTemplateSpec: template labels and annotations, then the pod spec. */
export function validatePodTemplateSpec(template: unknown, fldPath: string, opts: PodSpecOptions = {}): FieldError[] {
  if (!isRec(template)) return [required(fldPath, "")];
  const meta = rec(template.metadata);
  const errs = validateLabels(meta.labels, child(fldPath, "metadata", "labels"));
  errs.push(...validateAnnotations(meta.annotations, child(fldPath, "metadata", "annotations")));
  errs.push(...validatePodSpec(template.spec, child(fldPath, "spec"), opts));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Pod update

const POD_UPDATE_FORBIDDEN =
  "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/** Paths (dotted) where two JSON values differ, for the pod update message. */
function diffPaths(a: unknown, b: unknown, path: string, out: string[]): void {
  if (out.length >= 10 || deepEqual(a, b)) return;
  if (isRec(a) && isRec(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) diffPaths(a[k], b[k], child(path, k), out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => diffPaths(x, b[i], index(path, i), out));
    return;
  }
  out.push(path);
}

/**
 * ValidatePodUpdate's spec rule: only container images, activeDeadlineSeconds (set or lowered),
 * toleration additions, a negative terminationGracePeriodSeconds raised to 1, and removal of
 * scheduling gates may change.
 */
export function validatePodSpecUpdate(spec: unknown, oldSpec: unknown, fldPath = "spec"): FieldError[] {
  const errs: FieldError[] = [];
  const ns = rec(spec);
  const os = rec(oldSpec);
  const newContainers = arr(ns.containers);
  const oldContainers = arr(os.containers);
  if (newContainers.length !== oldContainers.length) {
    return [forbidden(child(fldPath, "containers"), "pod updates may not add or remove containers")];
  }
  const newInit = arr(ns.initContainers);
  const oldInit = arr(os.initContainers);
  if (newInit.length !== oldInit.length) {
    return [forbidden(child(fldPath, "initContainers"), "pod updates may not add or remove containers")];
  }
  // Munge the new spec into the old one wherever a change is allowed, then compare.
  const munged = clone(ns);
  const copyImages = (field: string, olds: unknown[]): void => {
    const list = arr(munged[field]);
    list.forEach((c, i) => {
      const img = rec(c).image;
      if (typeof img !== "string" || img === "") errs.push(required(child(index(child(fldPath, field), i), "image"), ""));
      if (isRec(c)) {
        if (rec(olds[i]).image === undefined) delete c.image;
        else c.image = rec(olds[i]).image;
      }
    });
  };
  copyImages("containers", oldContainers);
  copyImages("initContainers", oldInit);

  const newAds = ns.activeDeadlineSeconds;
  const oldAds = os.activeDeadlineSeconds;
  if (oldAds !== undefined && oldAds !== null) {
    if (newAds === undefined || newAds === null) {
      errs.push(invalid(child(fldPath, "activeDeadlineSeconds"), null, "must not update from a positive integer to nil value"));
    } else if (isInt(newAds) && isInt(oldAds) && newAds > oldAds) {
      errs.push(invalid(child(fldPath, "activeDeadlineSeconds"), newAds, "must be less than or equal to previous value"));
    }
  }
  if (oldAds === undefined) delete munged.activeDeadlineSeconds;
  else munged.activeDeadlineSeconds = oldAds;

  const oldTgps = os.terminationGracePeriodSeconds;
  if (isInt(oldTgps) && oldTgps < 0 && ns.terminationGracePeriodSeconds === 1) munged.terminationGracePeriodSeconds = oldTgps;

  // Tolerations: only additions; existing ones may only gain a tolerationSeconds or lower it.
  const oldTols = arr(os.tolerations);
  const newTols = arr(ns.tolerations);
  const tolKey = (t: unknown): string => {
    const r = rec(t);
    return JSON.stringify([r.key ?? "", r.operator ?? "", r.value ?? "", r.effect ?? ""]);
  };
  const remaining = [...newTols];
  for (const ot of oldTols) {
    const idx = remaining.findIndex((nt) => tolKey(nt) === tolKey(ot));
    if (idx < 0) {
      errs.push(forbidden(child(fldPath, "tolerations"), "existing toleration can not be modified except its tolerationSeconds"));
      break;
    }
    const nt = rec(remaining[idx]);
    const ots = rec(ot).tolerationSeconds;
    if (isInt(ots) && (!isInt(nt.tolerationSeconds) || nt.tolerationSeconds > ots)) {
      errs.push(forbidden(child(fldPath, "tolerations"), "existing toleration can not be modified except its tolerationSeconds"));
    }
    remaining.splice(idx, 1);
  }
  if (os.tolerations === undefined) delete munged.tolerations;
  else munged.tolerations = os.tolerations;

  // Scheduling gates may only be removed.
  const oldGates = arr(os.schedulingGates).map((g) => str(rec(g).name));
  const newGates = arr(ns.schedulingGates).map((g) => str(rec(g).name));
  if (newGates.every((g) => oldGates.includes(g))) {
    if (os.schedulingGates === undefined) delete munged.schedulingGates;
    else munged.schedulingGates = os.schedulingGates;
  } else if (oldGates.length === 0) {
    errs.push(forbidden(child(fldPath, "schedulingGates"), "only deletion is allowed, but found new scheduling gate"));
  }

  if (!deepEqual(munged, os)) {
    const paths: string[] = [];
    diffPaths(os, munged, fldPath, paths);
    errs.push(forbidden(fldPath, `${POD_UPDATE_FORBIDDEN}\n  changed: ${paths.join(", ")}`));
  }
  return errs;
}
