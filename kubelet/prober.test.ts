import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Container } from "../api/core/v1.ts";
import { FakeClock, FakeRecorder, newLogger } from "../client/index.ts";
import { ProbeManager } from "./prober.ts";
import { FakeRuntime } from "./runtime/fake.ts";

const log = newLogger("prober-test");
log.level = "silent";

describe("ProbeManager.runProbe", () => {
  let server: http.Server;
  let port = 0;
  let code = 200;
  const seen: http.IncomingHttpHeaders[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(code).end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const clock = new FakeClock();
  const m = new ProbeManager({ runtime: new FakeRuntime(clock), clock, recorder: new FakeRecorder(), log, onChange: () => undefined });
  const c = (): Container => ({ name: "app", ports: [{ name: "http", containerPort: port }] });

  it("httpGet: 2xx/3xx succeed, others fail with the status code; named ports and headers", async () => {
    code = 204;
    expect(await m.runProbe({ httpGet: { port: "http", path: "/healthz", httpHeaders: [{ name: "X-Probe", value: "1" }] } }, c(), "c1", "127.0.0.1")).toMatchObject({ result: "Success" });
    expect(seen.at(-1)?.["x-probe"]).toBe("1");
    expect(seen.at(-1)?.["user-agent"]).toMatch(/^kube-probe\//);
    code = 503;
    expect(await m.runProbe({ httpGet: { port } }, c(), "c1", "127.0.0.1")).toEqual({ result: "Failure", output: "HTTP probe failed with statuscode: 503" });
  });

  it("tcpSocket: connects, or fails with connection refused", async () => {
    expect((await m.runProbe({ tcpSocket: { port } }, c(), "c1", "127.0.0.1")).result).toBe("Success");
    const closed = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    expect(await m.runProbe({ tcpSocket: { port: closed } }, c(), "c1", "127.0.0.1")).toEqual({ result: "Failure", output: `dial tcp 127.0.0.1:${closed}: connect: connection refused` });
  });

  it("never probes an address that is not on this machine", async () => {
    const r = await m.runProbe({ httpGet: { port: 80, host: "192.0.2.1" } }, c(), "c1", "127.0.0.1");
    expect(r).toEqual({ result: "Failure", output: "refusing to probe 192.0.2.1: not an address of this machine" });
  });
});
