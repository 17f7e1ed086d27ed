// The downward API's values as upstream's fieldpath package renders them.

import { describe, expect, it } from "vitest";
import type { Pod } from "../api/core/v1.ts";
import { collectDownwardAPI, fieldPathValue, formatMap, goQuote, resourceFieldValue } from "./downwardapi.ts";

const pod: Pod = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "web-0", namespace: "shop", uid: "u-1", labels: { b: "2", a: "1" }, annotations: { "x/y": "tab\there" } },
  spec: { nodeName: "node-a", serviceAccountName: "builder", containers: [{ name: "c", image: "busybox", resources: { requests: { cpu: "250m" } } }] },
  status: { podIP: "10.0.0.9", hostIP: "192.168.0.2" },
};

describe("goQuote and formatMap", () => {
  it.each([
    ["plain", '"plain"'],
    ['a "q" \\ b', '"a \\"q\\" \\\\ b"'],
    ["l1\nl2\r\t", '"l1\\nl2\\r\\t"'],
    ["\x01\x7f", '"\\x01\\x7f"'],
    ["café ☕", '"café ☕"'],
    ["\u200b", '"\\u200b"'],
  ])("quotes %j as Go's %%q", (input, want) => {
    expect(goQuote(input)).toBe(want);
  });

  it("renders a map as sorted key=\"value\" lines without a trailing newline", () => {
    expect(formatMap({ b: "2", a: "1" })).toBe('a="1"\nb="2"');
    expect(formatMap(undefined)).toBe("");
  });
});

describe("fieldPathValue", () => {
  it.each([
    ["metadata.name", "web-0"],
    ["metadata.namespace", "shop"],
    ["metadata.uid", "u-1"],
    ["metadata.labels", 'a="1"\nb="2"'],
    ["metadata.annotations", 'x/y="tab\\there"'],
    ["metadata.labels['b']", "2"],
    ["metadata.annotations['x/y']", "tab\there"],
    ["metadata.labels['none']", ""],
    ["spec.nodeName", "node-a"],
    ["spec.serviceAccountName", "builder"],
    ["status.podIP", "10.0.0.9"],
    ["status.hostIP", "192.168.0.2"],
  ])("%s → %j", (path, want) => {
    expect(fieldPathValue(pod, path)).toBe(want);
  });

  it("prefers the kubelet's own pod and node IPs", () => {
    expect(fieldPathValue(pod, "status.podIP", { podIP: "10.9.9.9" })).toBe("10.9.9.9");
    expect(fieldPathValue(pod, "status.hostIP", { nodeIP: "127.0.0.10" })).toBe("127.0.0.10");
  });

  it("rejects unknown paths and subscripts on non-map fields", () => {
    expect(() => fieldPathValue(pod, "spec.containers")).toThrow("unsupported fieldPath: spec.containers");
    expect(() => fieldPathValue(pod, "metadata.name['x']")).toThrow('fieldPath "metadata.name[\'x\']" does not support subscript');
  });
});

describe("resourceFieldValue", () => {
  it("an unset limit reads the node's allocatable; values round up in divisor units", () => {
    expect(resourceFieldValue(pod, { containerName: "c", resource: "limits.cpu" }, { allocatable: { cpu: "4" } })).toBe("4");
    expect(resourceFieldValue(pod, { containerName: "c", resource: "requests.cpu" })).toBe("1");
    expect(resourceFieldValue(pod, { containerName: "c", resource: "requests.cpu", divisor: "1m" })).toBe("250");
    expect(resourceFieldValue(pod, { containerName: "c", resource: "limits.memory", divisor: "1Gi" })).toBe("32");
    expect(() => resourceFieldValue(pod, { containerName: "nope", resource: "limits.cpu" })).toThrow("container nope not found");
    expect(() => resourceFieldValue(pod, { containerName: "c", resource: "limits.gpu" })).toThrow("unsupported container resource : limits.gpu");
  });
});

describe("collectDownwardAPI", () => {
  it("writes every item with its mode or the default, and reports the ones it cannot read", () => {
    const { files, errors } = collectDownwardAPI(
      [
        { path: "name", fieldRef: { fieldPath: "metadata.name" } },
        { path: "x", fieldRef: { fieldPath: "bogus" }, mode: 0o600 },
      ],
      pod,
      0o644,
    );
    expect(files).toEqual([
      { path: "name", data: "web-0", mode: 0o644 },
      { path: "x", data: "", mode: 0o600 },
    ]);
    expect(errors.map((e) => e.message)).toEqual(["unsupported fieldPath: bogus"]);
  });
});
