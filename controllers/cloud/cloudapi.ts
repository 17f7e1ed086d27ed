// The simulated cloud's API calls, on its kube-system ConfigMaps (see types.ts): read a group's or
// profile's state from a ConfigMap, write it back with compare-and-swap on resourceVersion (two
// writers — the node group controller and the autoscaler, or a user's `kubectl edit` — never lose
// each other's change), launch instance ids, and build the node template of a group.

import { randomBytes } from "node:crypto";
import type { ConfigMap } from "../../api/index.ts";
import { isConflict, isNotFound, type Client } from "../../client/index.ts";
import {
  CLOUD_LABEL,
  CLOUD_NAMESPACE,
  INSTANCE_TYPE_LABEL,
  NODEGROUP_LABEL,
  REGION_LABEL,
  ZONE_LABEL,
  maxPods,
  type CloudInstance,
  type InstanceType,
  type NodeGroup,
  type NodeTemplate,
} from "./types.ts";

/** One Auto Scaling Group (a node group in one zone) or one serverless profile in one zone, as its ConfigMap holds it. */
export interface CloudGroupState {
  kind: "nodegroup" | "serverless";
  /** The group's or profile's name. */
  group: string;
  zone: string;
  instanceType?: string;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  /** The group's node template (serverless: none; each instance has its own). */
  template?: NodeTemplate;
  instances: CloudInstance[];
}

function intOf(v: string | undefined, dflt: number): number {
  const n = Number(v);
  return v !== undefined && /^\d+$/.test(v.trim()) ? n : dflt;
}

/**
 * The state a cloud ConfigMap holds, or an Error saying which field is unreadable (a user edited it
 * badly): callers log it and leave the group alone until it is fixed.
 */
export function parseCloudConfigMap(cm: Readonly<ConfigMap>): CloudGroupState | Error {
  const labels = cm.metadata.labels ?? {};
  const kind = labels[CLOUD_LABEL];
  const name = `${cm.metadata.namespace}/${cm.metadata.name}`;
  if (kind !== "nodegroup" && kind !== "serverless") return new Error(`${name}: label ${CLOUD_LABEL} must be nodegroup or serverless`);
  const group = labels[NODEGROUP_LABEL];
  const zone = labels[ZONE_LABEL];
  if (!group || !zone) return new Error(`${name}: labels ${NODEGROUP_LABEL} and ${ZONE_LABEL} are required`);
  const data = cm.data ?? {};
  let instances: CloudInstance[] = [];
  let template: NodeTemplate | undefined;
  try {
    instances = data.instances ? (JSON.parse(data.instances) as CloudInstance[]) : [];
    if (!Array.isArray(instances)) return new Error(`${name}: data.instances must be a JSON list`);
  } catch (e) {
    return new Error(`${name}: data.instances: ${(e as Error).message}`);
  }
  try {
    template = data.template ? (JSON.parse(data.template) as NodeTemplate) : undefined;
  } catch (e) {
    return new Error(`${name}: data.template: ${(e as Error).message}`);
  }
  for (const f of ["minSize", "maxSize", "desiredCapacity"] as const) {
    const v = data[f];
    if (v !== undefined && !/^\d+$/.test(v.trim())) return new Error(`${name}: data.${f} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return {
    kind,
    group,
    zone,
    instanceType: data.instanceType,
    minSize: intOf(data.minSize, 0),
    maxSize: intOf(data.maxSize, Number.MAX_SAFE_INTEGER),
    desiredCapacity: intOf(data.desiredCapacity, instances.length),
    template,
    instances,
  };
}

/** The ConfigMap for a state (data as strings, as ConfigMap data must be). */
export function cloudConfigMap(name: string, s: CloudGroupState, base?: Readonly<ConfigMap>): ConfigMap {
  const data: Record<string, string> = {};
  if (s.kind === "nodegroup") {
    if (s.instanceType) data.instanceType = s.instanceType;
    data.minSize = String(s.minSize);
    data.maxSize = String(s.maxSize);
    data.desiredCapacity = String(s.desiredCapacity);
    if (s.template) data.template = JSON.stringify(s.template);
  }
  data.instances = JSON.stringify(s.instances);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      ...(base?.metadata ?? {}),
      name,
      namespace: CLOUD_NAMESPACE,
      labels: { ...(base?.metadata.labels ?? {}), [CLOUD_LABEL]: s.kind, [NODEGROUP_LABEL]: s.group, [ZONE_LABEL]: s.zone },
    },
    data,
  };
}

const MAX_CAS_TRIES = 8;

/**
 * Read-modify-write of a cloud ConfigMap with compare-and-swap: `mutate` gets the current state
 * (undefined when the ConfigMap does not exist) and returns the new one, or undefined to leave it.
 * A conflict re-reads and calls `mutate` again. Returns the state written (or the current one when
 * nothing changed; undefined when there is none).
 */
export async function updateCloudGroup(
  client: Client,
  name: string,
  mutate: (cur: CloudGroupState | undefined) => CloudGroupState | undefined,
): Promise<CloudGroupState | undefined> {
  const cms = client.resource<ConfigMap>("", "configmaps");
  for (let attempt = 1; ; attempt++) {
    let cur: ConfigMap | undefined;
    try {
      cur = await cms.get(CLOUD_NAMESPACE, name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const parsed = cur ? parseCloudConfigMap(cur) : undefined;
    if (parsed instanceof Error) throw parsed;
    const next = mutate(parsed ? structuredClone(parsed) : undefined);
    if (!next) return parsed;
    try {
      if (cur) await cms.update(cloudConfigMap(name, next, cur));
      else await cms.create(CLOUD_NAMESPACE, cloudConfigMap(name, next));
      return next;
    } catch (e) {
      if ((isConflict(e) || (e as { code?: number }).code === 409) && attempt < MAX_CAS_TRIES) continue;
      throw e;
    }
  }
}

/** A new EC2-like instance id: "i-" and 17 hex digits. */
export function newInstanceId(): string {
  return "i-" + randomBytes(9).toString("hex").slice(0, 17);
}

/** RFC 3339 to the second, as EC2's LaunchTime. */
export function launchTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The node a group launches in a zone: the instance type's cpu and memory, max pods from its ENIs
 * (the VPC CNI's formula), 100Gi ephemeral storage; the group's labels over the well-known ones
 * (instance type, zone, region, nodegroup); the group's taints.
 */
export function groupTemplate(group: NodeGroup, type: InstanceType, zone: string, region: string): NodeTemplate {
  return {
    capacity: { cpu: String(type.cpu), memory: type.memory, pods: String(maxPods(type)), "ephemeral-storage": "100Gi" },
    labels: {
      [INSTANCE_TYPE_LABEL]: type.name,
      [ZONE_LABEL]: zone,
      [REGION_LABEL]: region,
      [NODEGROUP_LABEL]: group.name,
      ...group.labels,
    },
    taints: group.taints.map((t) => ({ ...t })),
  };
}
