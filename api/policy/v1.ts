// policy/v1 types: Eviction (the pods/eviction subresource body).

import type { KubeObject, DeleteOptions } from "../meta.ts";

/** POSTed to pods/eviction; metadata names the pod to evict. */
export interface Eviction extends KubeObject {
  deleteOptions?: DeleteOptions;
}
