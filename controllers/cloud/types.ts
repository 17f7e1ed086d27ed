// The simulated cloud's data model, shared by `kubelab up`, the cloud controller and the kubelet
// pools: the topology (region, zones with VPC subnets, node groups, serverless profiles) and the
// "cloud API" through which they cooperate — one ConfigMap in kube-system per node group and zone
// (an Auto Scaling Group in one Availability Zone, as cluster-autoscaler wants for zonal volumes)
// and per serverless profile and zone, listing the instances that exist. The cloud controller
// writes them; each zone's pool runs a simulated kubelet per listed instance. Users may read them
// (`kubectl get cm -n kube-system -l kubelab.io/cloud`) and change `desiredCapacity` as they would
// `aws autoscaling set-desired-capacity`.

/** A node taint of a group's template (core/v1 Taint without timeAdded). */
export interface TemplateTaint {
  key: string;
  value?: string;
  effect: "NoSchedule" | "PreferNoSchedule" | "NoExecute";
}

/** An EC2-like instance type: what a node of it has, and its ENI limits (VPC CNI max pods). */
export interface InstanceType {
  name: string;
  /** vCPUs, e.g. 8. */
  cpu: number;
  /** A quantity, e.g. "32Gi". */
  memory: string;
  /** Network interfaces the instance can attach. */
  enis: number;
  /** IPv4 addresses per network interface (the primary one included). */
  ipsPerEni: number;
}

export interface TopologyZone {
  name: string;
  /** The zone's VPC subnet (IPv4 CIDR inside 127.0.0.0/8): node and pod addresses come from it. */
  subnet: string;
}

export interface NodeGroup {
  name: string;
  instanceType: string;
  /** Zones the group spans (default: every zone); sizes below are per zone (one ASG per zone). */
  zones: string[];
  minSize: number;
  maxSize: number;
  desiredSize: number;
  labels: Record<string, string>;
  taints: TemplateTaint[];
}

export interface ServerlessSelector {
  namespace: string;
  /** Pods whose labels include all of these (empty: every pod of the namespace). */
  labels: Record<string, string>;
}

/** Like an EKS Fargate profile: pods matching any selector each run on a dedicated node. */
export interface ServerlessProfile {
  name: string;
  zones: string[];
  selectors: ServerlessSelector[];
}

export interface Topology {
  region: string;
  zones: TopologyZone[];
  /** Built-in types plus the file's own `instanceTypes`, by name. */
  instanceTypes: Record<string, InstanceType>;
  nodeGroups: NodeGroup[];
  serverless: ServerlessProfile[];
}

// ---- the cloud API: ConfigMaps in kube-system ----

export const CLOUD_NAMESPACE = "kube-system";
/** Every cloud ConfigMap carries it: value "nodegroup" or "serverless". */
export const CLOUD_LABEL = "kubelab.io/cloud";
/** The node group (or serverless profile) name, on the ConfigMap and on every node it launches. */
export const NODEGROUP_LABEL = "kubelab.io/nodegroup";
export const SERVERLESS_PROFILE_LABEL = "kubelab.io/serverless-profile";
export const ZONE_LABEL = "topology.kubernetes.io/zone";
export const REGION_LABEL = "topology.kubernetes.io/region";
export const INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type";
/** Serverless nodes: value "serverless" (as eks.amazonaws.com/compute-type=fargate), with a NoSchedule taint of the same key. */
export const COMPUTE_TYPE_LABEL = "kubelab.io/compute-type";
/** The scheduler name the ServerlessProfile admission gives matching pods (EKS: fargate-scheduler). */
export const SERVERLESS_SCHEDULER = "kubelab-serverless-scheduler";
/** kube-system ConfigMap the cloud controller writes with the profiles (data.profiles: JSON ServerlessProfile[]); read by admission. */
export const SERVERLESS_PROFILES_CONFIGMAP = "kubelab-serverless-profiles";

/** `kubelab-nodegroup-<group>-<zone>` / `kubelab-serverless-<profile>-<zone>`. */
export function nodeGroupConfigMapName(group: string, zone: string): string {
  return `kubelab-nodegroup-${group}-${zone}`;
}
export function serverlessConfigMapName(profile: string, zone: string): string {
  return `kubelab-serverless-${profile}-${zone}`;
}

/** The node a pool runs for an instance: capacity, labels, taints (allocatable = capacity). */
export interface NodeTemplate {
  capacity: Record<string, string>;
  labels: Record<string, string>;
  taints: TemplateTaint[];
}

/** One launched instance (an EC2 instance). */
export interface CloudInstance {
  /** The Node's name. */
  name: string;
  /** "i-" + 17 hex digits; spec.providerID is kubelab:///<zone>/<id>. */
  id: string;
  /** RFC 3339. */
  launchTime: string;
  /** Serverless: the pod it runs, "<namespace>/<name>". */
  pod?: string;
  /** Overrides the ConfigMap's template (serverless nodes are sized to their pod). */
  template?: NodeTemplate;
}

/**
 * The ConfigMap's `data` (all strings, as ConfigMap data must be):
 * instanceType, minSize, maxSize, desiredCapacity (decimal integers), template (JSON NodeTemplate),
 * instances (JSON CloudInstance[]). Serverless ConfigMaps have no sizes and per-instance templates.
 */
export interface CloudConfigMapData {
  instanceType?: string;
  minSize?: string;
  maxSize?: string;
  desiredCapacity?: string;
  template?: string;
  instances: string;
}

export function providerID(zone: string, instanceId: string): string {
  return `kubelab:///${zone}/${instanceId}`;
}

/** The VPC CNI's limit: ENIs × (IPs per ENI − 1) + 2. */
export function maxPods(t: Pick<InstanceType, "enis" | "ipsPerEni">): number {
  return t.enis * (t.ipsPerEni - 1) + 2;
}
