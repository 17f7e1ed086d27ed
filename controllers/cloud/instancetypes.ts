// The simulated cloud's built-in instance types: real EC2 figures (vCPUs, memory, and the ENI
// limits the VPC CNI's eni-max-pods.txt is computed from), so a node group's max pods is what an
// EKS node of that type reports. A topology file may add its own types.

import type { InstanceType } from "./types.ts";

const t = (name: string, cpu: number, memory: string, enis: number, ipsPerEni: number): InstanceType => ({ name, cpu, memory, enis, ipsPerEni });

export const BUILTIN_INSTANCE_TYPES: Readonly<Record<string, InstanceType>> = Object.fromEntries(
  [
    t("t3.small", 2, "2Gi", 3, 4), // max pods 11
    t("t3.medium", 2, "4Gi", 3, 6), // 17
    t("t3.large", 2, "8Gi", 3, 12), // 35
    t("t3.xlarge", 4, "16Gi", 4, 15), // 58
    t("m5.large", 2, "8Gi", 3, 10), // 29
    t("m5.xlarge", 4, "16Gi", 4, 15), // 58
    t("m5.2xlarge", 8, "32Gi", 4, 15), // 58
    t("m5.4xlarge", 16, "64Gi", 8, 30), // 234
    t("c5.large", 2, "4Gi", 3, 10), // 29
    t("c5.xlarge", 4, "8Gi", 4, 15), // 58
    t("c5.2xlarge", 8, "16Gi", 4, 15), // 58
    t("r5.large", 2, "16Gi", 3, 10), // 29
    t("r5.xlarge", 4, "32Gi", 4, 15), // 58
  ].map((x) => [x.name, x]),
);
