import { describe, expect, it } from "vitest";
import { applyJsonPatch, PatchError } from "./index.ts";

const doc = () => ({
  metadata: { name: "web", labels: { app: "web" } },
  spec: { replicas: 3, list: ["a", "b", "c"] },
});

const ok: Array<[string, unknown, unknown]> = [
  [
    "add inserts a new label",
    [{ op: "add", path: "/metadata/labels/tier", value: "fe" }],
    { ...doc(), metadata: { name: "web", labels: { app: "web", tier: "fe" } } },
  ],
  ["add with - appends to a list", [{ op: "add", path: "/spec/list/-", value: "d" }], { ...doc(), spec: { replicas: 3, list: ["a", "b", "c", "d"] } }],
  ["add at an index inserts into a list", [{ op: "add", path: "/spec/list/0", value: "z" }], { ...doc(), spec: { replicas: 3, list: ["z", "a", "b", "c"] } }],
  ["remove deletes a list item", [{ op: "remove", path: "/spec/list/1" }], { ...doc(), spec: { replicas: 3, list: ["a", "c"] } }],
  ["replace changes the replica count", [{ op: "replace", path: "/spec/replicas", value: 5 }], { ...doc(), spec: { replicas: 5, list: ["a", "b", "c"] } }],
  [
    "a passing test followed by replace applies the replace",
    [
      { op: "test", path: "/spec/replicas", value: 3 },
      { op: "replace", path: "/spec/replicas", value: 4 },
    ],
    { ...doc(), spec: { replicas: 4, list: ["a", "b", "c"] } },
  ],
  [
    "move renames a label",
    [{ op: "move", from: "/metadata/labels/app", path: "/metadata/labels/name" }],
    { ...doc(), metadata: { name: "web", labels: { name: "web" } } },
  ],
  [
    "copy duplicates a value",
    [{ op: "copy", from: "/metadata/name", path: "/metadata/labels/copy" }],
    { ...doc(), metadata: { name: "web", labels: { app: "web", copy: "web" } } },
  ],
  ["an escaped ~1 path addresses a key with a slash", [{ op: "add", path: "/metadata/labels/a~1b", value: "x" }], { ...doc(), metadata: { name: "web", labels: { app: "web", "a/b": "x" } } }],
  ["an empty patch returns an equal document", [], doc()],
];

const failures: Array<[string, unknown, PatchError["reason"], RegExp]> = [
  ["a patch that is not an array is a bad request", { op: "add" }, "BadRequest", /expected an array of operations, got object/],
  ["an unknown op is a bad request", [{ op: "frobnicate", path: "/a" }], "BadRequest", /operation 0: unknown op "frobnicate"/],
  ["a missing path is a bad request", [{ op: "remove" }], "BadRequest", /operation 0 \(remove\): "path" is missing/],
  ["a path without a leading slash is a bad request", [{ op: "remove", path: "spec" }], "BadRequest", /is not a JSON pointer/],
  ["add without a value is a bad request", [{ op: "add", path: "/a" }], "BadRequest", /operation 0 \(add\): missing "value"/],
  ["move without from is a bad request", [{ op: "move", path: "/a" }], "BadRequest", /"from" is missing/],
  ["removing a path that does not exist is invalid", [{ op: "remove", path: "/spec/x" }], "Invalid", /operation 0 \(remove\): path "\/spec\/x" does not exist/],
  ["replacing a path that does not exist is invalid", [{ op: "replace", path: "/spec/x/y", value: 1 }], "Invalid", /path "\/spec\/x\/y" does not exist/],
  ["a failing test is invalid and names the path and value", [{ op: "test", path: "/spec/replicas", value: 5 }], "Invalid", /operation 0 \(test\) failed: the value at "\/spec\/replicas" is not 5/],
  ["adding past the end of a list is invalid", [{ op: "add", path: "/spec/list/9", value: "x" }], "Invalid", /out of bounds/],
  ["copying from a missing path is invalid", [{ op: "copy", from: "/nope", path: "/a" }], "Invalid", /from "\/nope" does not exist/],
  ["adding under a missing parent is invalid", [{ op: "add", path: "/a/b/c", value: 1 }], "Invalid", /operation 0 \(add\)/],
  ["a __proto__ path segment is rejected", [{ op: "add", path: "/__proto__/x", value: 1 }], "BadRequest", /reserved segment "__proto__"/],
];

describe("applyJsonPatch", () => {
  it.each(ok)("%s", (_name, ops, want) => {
    expect(applyJsonPatch(doc(), ops)).toEqual(want);
  });

  it.each(failures)("%s", (_name, ops, reason, message) => {
    let err: unknown;
    try {
      applyJsonPatch(doc(), ops);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PatchError);
    expect((err as PatchError).reason).toBe(reason);
    expect((err as PatchError).message).toMatch(message);
  });

  it("is pure: neither the document nor the operations are changed, and values are copied", () => {
    const target = doc();
    const value = { nested: [1] };
    const ops = [
      { op: "add", path: "/spec/extra", value },
      { op: "remove", path: "/spec/list/0" },
    ];
    const before = JSON.stringify([target, ops]);
    const out = applyJsonPatch(target, ops) as { spec: { extra: { nested: number[] } } };
    expect(JSON.stringify([target, ops])).toBe(before);
    out.spec.extra.nested.push(2);
    expect(value.nested).toEqual([1]);
  });

  it("stops at the first failing operation without partial effects on the input", () => {
    const target = doc();
    expect(() =>
      applyJsonPatch(target, [
        { op: "replace", path: "/spec/replicas", value: 9 },
        { op: "test", path: "/spec/replicas", value: 3 },
      ]),
    ).toThrow(/operation 1 \(test\) failed/);
    expect(target.spec.replicas).toBe(3);
  });
});
