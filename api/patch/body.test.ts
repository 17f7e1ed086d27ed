import { describe, expect, it } from "vitest";
import { applyPatch, parsePatchBody, PatchError } from "./index.ts";

const ok: Array<[string, string, string | Buffer, string, unknown]> = [
  ["a JSON patch", "application/json-patch+json", '[{"op":"remove","path":"/a"}]', "json", [{ op: "remove", path: "/a" }]],
  ["a merge patch with a charset parameter", "application/merge-patch+json; charset=utf-8", '{"spec":{"replicas":5}}', "merge", { spec: { replicas: 5 } }],
  ["a strategic merge patch from a Buffer", "application/strategic-merge-patch+json", Buffer.from('{"spec":{"unschedulable":true}}'), "strategic", { spec: { unschedulable: true } }],
  ["an apply patch sent as JSON by kubectl", "application/apply-patch+yaml", '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}', "apply", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } }],
  ["an apply patch in YAML", "Application/Apply-Patch+YAML", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: 'v'\n", "apply", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { k: "v" } }],
];

const bad: Array<[string, string, string, PatchError["reason"], RegExp]> = [
  ["an unknown media type is unsupported with the accepted list", "application/json", "{}", "UnsupportedMediaType", /unknown format - accepted media types include: application\/json-patch\+json, application\/merge-patch\+json, application\/apply-patch\+yaml, application\/strategic-merge-patch\+json/],
  ["a missing content type is unsupported", "", "{}", "UnsupportedMediaType", /unknown format/],
  ["apply as CBOR is unsupported", "application/apply-patch+cbor", "\xa0", "UnsupportedMediaType", /apply-patch\+cbor is not supported/],
  ["malformed JSON names the parse problem", "application/merge-patch+json", '{"spec":', "BadRequest", /merge patch in the request body is not valid JSON: /],
  ["an empty body is a bad request", "application/strategic-merge-patch+json", "  ", "BadRequest", /is empty/],
  ["a strategic merge patch that is a list is a bad request", "application/strategic-merge-patch+json", "[1]", "BadRequest", /must be a JSON object, got array/],
  ["a JSON patch with a bad operation is rejected while parsing", "application/json-patch+json", '[{"op":"nope","path":"/a"}]', "BadRequest", /unknown op "nope"/],
  ["a nesting bomb is rejected before parsing", "application/merge-patch+json", "[".repeat(100000) + "]".repeat(100000), "BadRequest", /nested deeper than the maximum of 100 levels/],
  ["an object nesting bomb in YAML is rejected", "application/apply-patch+yaml", '{"a":'.repeat(500) + "1" + "}".repeat(500), "BadRequest", /nested deeper/],
  ["invalid YAML names the problem", "application/apply-patch+yaml", "a: [1\nb: c", "BadRequest", /not valid YAML/],
  ["several YAML documents are rejected", "application/apply-patch+yaml", "a: 1\n---\nb: 2\n", "BadRequest", /single YAML document, got 2/],
];

describe("parsePatchBody", () => {
  it.each(ok)("decodes %s", (_name, ct, body, patchType, patch) => {
    expect(parsePatchBody(ct, body)).toEqual({ patchType, patch });
  });

  it.each(bad)("%s", (_name, ct, body, reason, message) => {
    let err: unknown;
    try {
      parsePatchBody(ct, body);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PatchError);
    expect((err as PatchError).reason).toBe(reason);
    expect((err as PatchError).message).toMatch(message);
  });

  it("feeds applyPatch: kubectl scale's merge patch, cordon's strategic patch and a JSON patch", () => {
    const deploy = { apiVersion: "apps/v1", kind: "Deployment" };
    const node = { apiVersion: "v1", kind: "Node" };
    expect(applyPatch({ spec: { replicas: 1, paused: false } }, parsePatchBody("application/merge-patch+json", '{"spec":{"replicas":5}}'), deploy)).toEqual({
      spec: { replicas: 5, paused: false },
    });
    expect(applyPatch({ spec: {} }, parsePatchBody("application/strategic-merge-patch+json", '{"spec":{"unschedulable":true}}'), node)).toEqual({
      spec: { unschedulable: true },
    });
    expect(applyPatch({ a: 1 }, parsePatchBody("application/json-patch+json", '[{"op":"replace","path":"/a","value":2}]'), node)).toEqual({ a: 2 });
  });
});
