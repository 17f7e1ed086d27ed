// ControllerRevision helpers shared by the StatefulSet and DaemonSet controllers (upstream's
// pkg/controller/history): hashing and naming revisions, finding equal ones, ordering them, and
// creating, renumbering, adopting, releasing and deleting them through the API.
//
// A revision is a snapshot of its parent's state as an opaque JSON value (`data`; for StatefulSets
// and DaemonSets the strategic merge patch `{"spec":{"template":{...,"$patch":"replace"}}}`).
// Nothing here knows what the data means: callers build it, compare by it, and apply it.

import type { ControllerRevision, KubeObject, Selector } from "../../api/index.ts";
import { isAlreadyExists, isConflict } from "../../client/errors.ts";
import type { Client, Lister, ResourceClient } from "../../client/types.ts";
import { canonicalJSON, safeEncodeString } from "../deployment/util.ts";
import { adoptPatch, deepCopy, getControllerOf, newControllerRef, releasePatch } from "../podcontrol.ts";

/** The label every ControllerRevision carries: the hash of its data (history.ControllerRevisionHashLabel). */
export const ControllerRevisionHashLabel = "controller.kubernetes.io/hash";

/** Longest name prefix kept by controllerRevisionName (253 minus room for "-" and a 10-character hash, as upstream). */
const MaxRevisionNamePrefix = 223;

/** FNV-1 (not 1a), 32 bits: Go's hash/fnv New32, which HashControllerRevision uses. */
function fnv32(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (const b of bytes) {
    h = Math.imul(h, 0x01000193) >>> 0;
    h = (h ^ b) >>> 0;
  }
  return h >>> 0;
}

/**
 * HashControllerRevision: FNV-1 over the revision's data (its canonical JSON: keys sorted, as Go
 * marshals the patch), then the collision count in decimal when given, rendered with
 * SafeEncodeString. Equal data and probe always give the same hash.
 */
export function hashControllerRevision(revision: Pick<ControllerRevision, "data">, probe?: number): string {
  const enc = new TextEncoder();
  let h = fnv32(enc.encode(revision.data === undefined ? "" : canonicalJSON(revision.data)));
  if (probe !== undefined) h = fnv32(enc.encode(String(probe)), h);
  return safeEncodeString(String(h));
}

/** ControllerRevisionName: `<prefix>-<hash>`, the prefix cut to 223 characters. */
export function controllerRevisionName(prefix: string, hash: string): string {
  return `${prefix.length > MaxRevisionNamePrefix ? prefix.slice(0, MaxRevisionNamePrefix) : prefix}-${hash}`;
}

/**
 * NewControllerRevision: an unsaved revision of `parent` — the parent's template labels plus the
 * hash label, a controller reference to the parent, `data` and `revision` — named
 * `<parent>-<hash>` where the hash covers data and collisionCount.
 */
export function newControllerRevision(
  parent: Readonly<KubeObject>,
  parentGVK: { apiVersion: string; kind: string },
  templateLabels: Readonly<Record<string, string>> | undefined,
  data: unknown,
  revision: number,
  collisionCount?: number,
): ControllerRevision {
  const cr: ControllerRevision = {
    apiVersion: "apps/v1",
    kind: "ControllerRevision",
    metadata: {
      namespace: parent.metadata.namespace,
      labels: { ...(templateLabels ?? {}) },
      ownerReferences: [newControllerRef(parent, parentGVK)],
    },
    data: structuredClone(data),
    revision,
  };
  const hash = hashControllerRevision(cr, collisionCount);
  cr.metadata.name = controllerRevisionName(parent.metadata.name ?? "", hash);
  cr.metadata.labels![ControllerRevisionHashLabel] = hash;
  return cr;
}

/**
 * EqualRevision: both absent, or the same data. (Upstream first compares the hash labels, but they
 * are SafeEncodeString'd and never parse as numbers, so in practice the data decides; so here.)
 */
export function equalRevision(a: Readonly<ControllerRevision> | undefined, b: Readonly<ControllerRevision> | undefined): boolean {
  if (!a || !b) return a === b;
  return canonicalJSON(a.data ?? null) === canonicalJSON(b.data ?? null);
}

/** FindEqualRevisions: the revisions whose data equals needle's, in the order given. */
export function findEqualRevisions<T extends Readonly<ControllerRevision>>(revisions: readonly T[], needle: Readonly<ControllerRevision>): T[] {
  return revisions.filter((r) => equalRevision(r, needle));
}

/** SortControllerRevisions' order: by revision, then creationTimestamp, then name. */
export function compareRevisions(a: Readonly<ControllerRevision>, b: Readonly<ControllerRevision>): number {
  if (a.revision !== b.revision) return (a.revision ?? 0) - (b.revision ?? 0);
  const ta = a.metadata.creationTimestamp ?? "";
  const tb = b.metadata.creationTimestamp ?? "";
  if (ta !== tb) return Date.parse(ta || "0") - Date.parse(tb || "0") || (ta < tb ? -1 : 1);
  const na = a.metadata.name ?? "";
  const nb = b.metadata.name ?? "";
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** A sorted copy (oldest revision first). */
export function sortControllerRevisions<T extends Readonly<ControllerRevision>>(revisions: readonly T[]): T[] {
  return [...revisions].sort(compareRevisions);
}

/** nextRevision: one more than the highest revision number, 1 for an empty history. */
export function nextRevision(revisions: readonly Readonly<ControllerRevision>[]): number {
  let max = 0;
  for (const r of revisions) max = Math.max(max, r.revision ?? 0);
  return max + 1;
}

/**
 * Interface to a parent's history through the API (upstream's realHistory). Reads come from the
 * ControllerRevision informer's lister; writes go to the apiserver. Every method rejects with the
 * client's error for API failures; none retries beyond what its contract says.
 */
export class History {
  private readonly revisions: ResourceClient<ControllerRevision>;

  constructor(
    client: Client,
    private readonly lister: Lister<ControllerRevision>,
  ) {
    this.revisions = client.resource<ControllerRevision>("apps", "controllerrevisions");
  }

  /**
   * ListControllerRevisions: the revisions in parent's namespace matching `selector` that parent
   * controls or that no one controls (orphans, for the caller to adopt). Unsorted.
   */
  listControllerRevisions(parent: Readonly<KubeObject>, selector: Selector): Readonly<ControllerRevision>[] {
    return this.lister.listNamespace(parent.metadata.namespace ?? "", selector).filter((r) => {
      const ref = getControllerOf(r);
      return !ref || ref.uid === parent.metadata.uid;
    });
  }

  /**
   * CreateControllerRevision: creates `revision` under the name its data and the collision count
   * hash to. When that name exists with the same data the existing revision is returned; with other
   * data (a hash collision) the count is bumped and the create retried. Returns the stored revision
   * and the collision count to write to the parent's status.
   */
  async createControllerRevision(
    parent: Readonly<KubeObject>,
    revision: Readonly<ControllerRevision>,
    collisionCount: number,
  ): Promise<{ revision: ControllerRevision; collisionCount: number }> {
    const ns = parent.metadata.namespace ?? "";
    const clone = deepCopy(revision);
    clone.metadata.namespace = ns;
    for (;;) {
      clone.metadata.name = controllerRevisionName(parent.metadata.name ?? "", hashControllerRevision(revision, collisionCount));
      try {
        return { revision: await this.revisions.create(ns, clone), collisionCount };
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        const exists = await this.revisions.get(ns, clone.metadata.name);
        if (canonicalJSON(exists.data ?? null) === canonicalJSON(clone.data ?? null)) return { revision: exists, collisionCount };
        collisionCount++;
      }
    }
  }

  /**
   * UpdateControllerRevision: sets the revision number (data never changes), retrying on conflict
   * from a fresh read. Returns the revision as stored.
   */
  async updateControllerRevision(revision: Readonly<ControllerRevision>, newRevision: number): Promise<ControllerRevision> {
    let clone = deepCopy(revision);
    for (let attempt = 0; ; attempt++) {
      if (clone.revision === newRevision) return clone;
      clone.revision = newRevision;
      try {
        return await this.revisions.update(clone);
      } catch (e) {
        if (!isConflict(e) || attempt >= 4) throw e;
        clone = await this.revisions.get(clone.metadata.namespace ?? "", clone.metadata.name ?? "");
      }
    }
  }

  /** DeleteControllerRevision. */
  async deleteControllerRevision(revision: Readonly<ControllerRevision>): Promise<void> {
    await this.revisions.delete(revision.metadata.namespace ?? "", revision.metadata.name ?? "");
  }

  /** AdoptControllerRevision: makes parent the controller of an orphan (rejects when someone else controls it). */
  async adoptControllerRevision(
    parent: Readonly<KubeObject>,
    parentGVK: { apiVersion: string; kind: string },
    revision: Readonly<ControllerRevision>,
  ): Promise<ControllerRevision> {
    const owner = getControllerOf(revision);
    if (owner) throw new Error(`attempt to adopt revision owned by ${owner.kind}/${owner.name} (${owner.uid})`);
    return this.revisions.patch(revision.metadata.namespace ?? "", revision.metadata.name ?? "", "merge", adoptPatch(revision, newControllerRef(parent, parentGVK)));
  }

  /** ReleaseControllerRevision: drops parent's owner reference from the revision. */
  async releaseControllerRevision(parent: Readonly<KubeObject>, revision: Readonly<ControllerRevision>): Promise<ControllerRevision> {
    return this.revisions.patch(revision.metadata.namespace ?? "", revision.metadata.name ?? "", "merge", releasePatch(revision, parent.metadata.uid ?? ""));
  }
}
