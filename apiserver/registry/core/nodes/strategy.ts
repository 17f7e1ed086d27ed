// Nodes: the kubelet registers a Node with its status, so create keeps status.

import type { ResourceInfo } from "../../../../api/index.ts";
import { genericStrategy, type Strategy } from "../../strategy.ts";

export function nodeStrategy(info: ResourceInfo): Strategy {
  return genericStrategy(info, {
    prepareForCreate() {},
  });
}
