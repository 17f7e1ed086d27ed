// DaemonSets: generation tracks spec changes (for `kubectl rollout status`), and the server keeps the
// template generation — apps/v1's deprecated.daemonset.template.generation annotation, the internal
// spec.templateGeneration — which starts at 1 and is bumped exactly when spec.template changes.

import { DaemonSetTemplateGenerationAnnotation, type KubeObject, type ResourceInfo } from "../../../../api/index.ts";
import { deepEqual, genericStrategy, type Strategy } from "../../strategy.ts";

function templateGeneration(obj: Readonly<KubeObject>): number {
  const v = obj.metadata.annotations?.[DaemonSetTemplateGenerationAnnotation];
  if (v === undefined || !/^\d+$/.test(v)) return 0;
  return Number.parseInt(v, 10);
}

function setTemplateGeneration(obj: KubeObject, gen: number): void {
  obj.metadata.annotations = { ...(obj.metadata.annotations ?? {}), [DaemonSetTemplateGenerationAnnotation]: String(gen) };
}

function templateOf(obj: Readonly<KubeObject>): unknown {
  return (obj as { spec?: { template?: unknown } }).spec?.template;
}

export function daemonSetStrategy(info: ResourceInfo): Strategy {
  const base = genericStrategy(info, { tracksGeneration: true });
  return genericStrategy(info, {
    tracksGeneration: true,
    prepareForCreate(obj, ctx) {
      base.prepareForCreate(obj, ctx);
      // A new DaemonSet's status is the zero DaemonSetStatus, whose four counts are always serialized.
      obj.status = { currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0 };
      setTemplateGeneration(obj, Math.max(1, templateGeneration(obj)));
    },
    prepareForUpdate(obj, old, ctx) {
      base.prepareForUpdate(obj, old, ctx);
      // Clients may not set the template generation; it moves only with the template.
      const gen = templateGeneration(old);
      setTemplateGeneration(obj, deepEqual(templateOf(obj), templateOf(old)) ? Math.max(1, gen) : gen + 1);
    },
  });
}
