// DefaultBinder: binds the pod by POSTing pods/<name>/binding (plugins/defaultbinder).

import type { Pod } from "../../../api/index.ts";
import { Status, type BindPlugin, type CycleState, type Handle, type PluginFactory } from "../../framework/types.ts";

export const NAME = "DefaultBinder";

export class DefaultBinder implements BindPlugin {
  readonly name = NAME;

  constructor(private readonly handle: Pick<Handle, "client">) {}

  /**
   * The UID precondition makes the apiserver refuse to bind a pod deleted and recreated under the
   * same name since this cycle began. Any failure (conflict: already bound; not found) is an Error
   * status: the scheduler forgets the assumed pod and retries it.
   */
  async bind(_state: CycleState, pod: Readonly<Pod>, nodeName: string): Promise<Status> {
    const { namespace = "default", name = "", uid } = pod.metadata;
    try {
      await this.handle.client.bind(namespace, name, nodeName, uid ? { uid } : {});
      return Status.success();
    } catch (err) {
      return Status.error(err instanceof Error ? err.message : String(err));
    }
  }
}

export const newDefaultBinder: PluginFactory = (_args, handle) => new DefaultBinder(handle);
