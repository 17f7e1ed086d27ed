import { describe, expect, it } from "vitest";
import { FakeClient, fakeErrors, type Reaction } from "../../../client/index.ts";
import { findKind } from "../../../api/index.ts";
import { Code, CycleState } from "../../framework/types.ts";
import { fakeHandle, makePod } from "../testing.ts";
import { DefaultBinder, NAME, newDefaultBinder } from "./index.ts";

describe(NAME, () => {
  const pods = findKind("v1", "Pod")!;
  const cases: { name: string; reaction?: Reaction; code: number; message?: RegExp; boundTo?: string }[] = [
    { name: "binding posts pods/binding with the node as target and the pod's UID as precondition", code: Code.Success, boundTo: "node-a" },
    {
      name: "a pod already bound elsewhere comes back as an Error status carrying the apiserver's message",
      reaction: { error: fakeErrors.conflict(pods, "web", 'pod web is already assigned to node "node-b"') },
      code: Code.Error,
      message: /already assigned to node "node-b"/,
    },
    {
      name: "a pod deleted before binding comes back as an Error status",
      reaction: { error: fakeErrors.notFound(pods, "web") },
      code: Code.Error,
      message: /not found/,
    },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      const pod = makePod("web", { uid: "uid-web" });
      const client = new FakeClient([pod]);
      if (tc.reaction) client.prependReactor("bind", "pods", () => tc.reaction);
      const pl = newDefaultBinder(undefined, fakeHandle({ client })) as DefaultBinder;
      const status = await pl.bind(new CycleState(), pod, "node-a");
      expect(status.code).toBe(tc.code);
      if (tc.message) expect(status.message()).toMatch(tc.message);
      const bind = client.actions.find((a) => a.verb === "bind");
      expect(bind).toMatchObject({
        namespace: "default",
        name: "web",
        subresource: "binding",
        object: { metadata: { name: "web", namespace: "default", uid: "uid-web" }, target: { kind: "Node", name: "node-a" } },
      });
      if (tc.boundTo) {
        const spec = client.tracker("", "pods", "default", "web")?.["spec"] as { nodeName?: string } | undefined;
        expect(spec?.nodeName).toBe(tc.boundTo);
      }
    });
  }
});
