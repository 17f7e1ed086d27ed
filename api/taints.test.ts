import { describe, expect, it } from "vitest";
import type { Taint } from "./core/v1.ts";
import { findMatchingUntoleratedTaint, toleratesTaint } from "./taints.ts";

describe("toleration helpers", () => {
  it("an Equal toleration with an empty key matches any key with the same value (as upstream's ToleratesTaint)", () => {
    expect(toleratesTaint({ value: "v" }, { key: "k", value: "v", effect: "NoSchedule" })).toBe(true);
    expect(toleratesTaint({ value: "w" }, { key: "k", value: "v", effect: "NoSchedule" })).toBe(false);
  });
  it("findMatchingUntoleratedTaint ignores taints the filter drops", () => {
    const taints: Taint[] = [{ key: "a", effect: "PreferNoSchedule" }, { key: "b", effect: "NoExecute" }];
    expect(findMatchingUntoleratedTaint(taints, [], (t) => t.effect === "NoExecute")?.key).toBe("b");
    expect(findMatchingUntoleratedTaint(taints, [{ key: "b", operator: "Exists" }], (t) => t.effect === "NoExecute")).toBeUndefined();
    expect(findMatchingUntoleratedTaint(taints, [])?.key).toBe("a");
  });
});
