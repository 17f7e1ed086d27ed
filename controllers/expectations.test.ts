// Expectations: counts down creations, deletions only of the pods we asked to delete, and expires.

import { describe, expect, it } from "vitest";
import { FakeClock } from "../client/testing.ts";
import { Expectations, ExpectationsTimeoutMs } from "./expectations.ts";

describe("Expectations", () => {
  it("is satisfied for a key it has never seen", () => {
    expect(new Expectations().satisfied("ns/a")).toBe(true);
  });

  it("is satisfied once every expected creation has been observed", () => {
    const e = new Expectations();
    e.expectCreations("ns/a", 2);
    e.creationObserved("ns/a");
    expect(e.satisfied("ns/a")).toBe(false);
    e.creationObserved("ns/a");
    expect(e.satisfied("ns/a")).toBe(true);
  });

  it("counts only the deletions of the pods it was told about, each once", () => {
    const e = new Expectations();
    e.expectDeletions("ns/a", ["u1", "u2"]);
    e.deletionObserved("ns/a", "other");
    e.deletionObserved("ns/a", "u1");
    e.deletionObserved("ns/a", "u1");
    expect(e.get("ns/a")).toEqual({ add: 0, del: 1 });
    e.deletionObserved("ns/a", "u2");
    expect(e.satisfied("ns/a")).toBe(true);
  });

  it("treats expectations older than five minutes as satisfied, so a lost event cannot wedge the controller", async () => {
    const clock = new FakeClock();
    const e = new Expectations({ clock });
    e.expectCreations("ns/a", 1);
    await clock.advance(ExpectationsTimeoutMs);
    expect(e.satisfied("ns/a")).toBe(false);
    await clock.advance(1);
    expect(e.satisfied("ns/a")).toBe(true);
  });

  it("forgets a deleted key entirely", () => {
    const e = new Expectations();
    e.expectCreations("ns/a", 1);
    e.delete("ns/a");
    expect(e.get("ns/a")).toBeUndefined();
    expect(e.satisfied("ns/a")).toBe(true);
  });
});
