// The fault proxy's links on loopback: traffic flows; cut holds it and heal delivers it; reset
// refuses; delay adds latency in order; throttle caps the rate.

import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newLogger } from "../client/index.ts";
import { Links } from "./linkproxy.ts";

let echo: net.Server;
let echoPort = 0;
const links = new Links(newLogger("test"));
let port = 0;

beforeAll(async () => {
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
  echoPort = (echo.address() as net.AddressInfo).port;
  port = await links.add("c/echo", "c", "127.0.0.1", echoPort);
});

afterAll(() => {
  links.close();
  echo.close();
});

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

function roundTrip(s: net.Socket, msg: string, timeoutMs = 3000): Promise<{ data: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    let got = "";
    const t = setTimeout(() => reject(new Error(`no echo within ${timeoutMs} ms (got "${got}")`)), timeoutMs);
    const on = (d: Buffer) => {
      got += d.toString();
      if (got.length >= msg.length) {
        clearTimeout(t);
        s.off("data", on);
        resolve({ data: got, ms: Date.now() - t0 });
      }
    };
    s.on("data", on);
    s.write(msg);
  });
}

describe("fault proxy links", () => {
  it("forwards, holds data while cut and delivers it on heal", async () => {
    const s = await connect();
    expect((await roundTrip(s, "hello")).data).toBe("hello");
    links.set("c", { mode: "cut" });
    await expect(roundTrip(s, "held", 300)).rejects.toThrow(/no echo/);
    const late = roundTrip(s, "", 3000); // collects what the cut held
    links.set("c", { mode: "ok" });
    expect((await late).data).toBe("held");
    s.destroy();
  });

  it("resets connections and refuses new ones until heal", async () => {
    const s = await connect();
    const closed = new Promise<string>((r) => s.once("error", (e) => r((e as NodeJS.ErrnoException).code ?? "error")));
    links.set("c", { mode: "reset" });
    expect(await closed).toBe("ECONNRESET");
    await expect(connect().then((x) => roundTrip(x, "x", 500))).rejects.toThrow();
    links.set("c", { mode: "ok" });
    const again = await connect();
    expect((await roundTrip(again, "back")).data).toBe("back");
    again.destroy();
  });

  it("delays each chunk each way, in order", async () => {
    const s = await connect();
    links.set("c", { mode: "delay", latencyMs: 150 });
    const r = await roundTrip(s, "slow");
    expect(r.data).toBe("slow");
    expect(r.ms).toBeGreaterThanOrEqual(290);
    links.set("c", { mode: "ok" });
    s.destroy();
  });

  it("throttles to a rate each way", async () => {
    const s = await connect();
    links.set("c", { mode: "throttle", bytesPerSecond: 20_000 });
    const r = await roundTrip(s, "x".repeat(10_000), 5000);
    expect(r.data.length).toBe(10_000);
    expect(r.ms).toBeGreaterThanOrEqual(400); // 10 kB at 20 kB/s is 0.5 s each way
    links.set("c", { mode: "ok" });
    s.destroy();
  });

  it("names what exists when a component has no link", () => {
    expect(() => links.set("nope", { mode: "cut" })).toThrow('no link of "nope" (links exist with up --chaos: c)');
  });
});
