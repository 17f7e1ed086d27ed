import { describe, expect, it } from "vitest";
import { applyMergePatch, PatchError } from "./index.ts";

// RFC 7386 appendix A.
const rfc: Array<[unknown, unknown, unknown]> = [
  [{ a: "b" }, { a: "c" }, { a: "c" }],
  [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
  [{ a: "b" }, { a: null }, {}],
  [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
  [{ a: ["b"] }, { a: "c" }, { a: "c" }],
  [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
  [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
  [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
  [["a", "b"], ["c", "d"], ["c", "d"]],
  [{ a: "b" }, ["c"], ["c"]],
  [{ a: "foo" }, null, null],
  [{ a: "foo" }, "bar", "bar"],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: "b", c: null }, { a: "b" }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

describe("applyMergePatch", () => {
  it.each(rfc)("RFC 7386 example: %j patched with %j gives %j", (target, patch, want) => {
    expect(applyMergePatch(target, patch)).toEqual(want);
  });

  it("does not mutate the target or the patch and shares no structure with them", () => {
    const target = { metadata: { labels: { a: "1" } }, spec: { replicas: 1 } };
    const patch = { metadata: { labels: { b: "2" } }, spec: { template: { x: [1] } } };
    const before = JSON.stringify([target, patch]);
    const out = applyMergePatch(target, patch) as { spec: { template: { x: number[] } } };
    expect(JSON.stringify([target, patch])).toBe(before);
    out.spec.template.x.push(2);
    expect(patch.spec.template.x).toEqual([1]);
  });

  it("applies kubectl label's patch and removes a label patched with null", () => {
    const target = { metadata: { name: "web", labels: { app: "web", tier: "old" } } };
    const out = applyMergePatch(target, { metadata: { labels: { tier: null, env: "prod" } } });
    expect(out).toEqual({ metadata: { name: "web", labels: { app: "web", env: "prod" } } });
  });

  it("rejects a patch nested deeper than 100 levels with BadRequest", () => {
    let bomb: unknown = 1;
    for (let i = 0; i < 200; i++) bomb = { a: bomb };
    expect(() => applyMergePatch({}, bomb)).toThrow(PatchError);
    try {
      applyMergePatch({}, bomb);
    } catch (e) {
      expect((e as PatchError).reason).toBe("BadRequest");
    }
  });

  it("treats __proto__ in a patch as an ordinary key without polluting prototypes", () => {
    const patch = JSON.parse('{"__proto__":{"polluted":true}}') as unknown;
    const out = applyMergePatch({}, patch) as Record<string, unknown>;
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect(Object.keys(out)).toEqual(["__proto__"]);
  });
});
