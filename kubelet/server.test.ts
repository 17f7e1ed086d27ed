import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { newLogger } from "../client/index.ts";
import { criLogLine } from "./runtime/types.ts";
import { CriLogDecoder, startKubeletServer } from "./server.ts";

const log = newLogger("kubelet-server-test");
log.level = "silent";

let root: string;
let server: { port: number; close(): Promise<void> };
const pods = new Map<string, string>([["default/web", "uid-1"]]);
const running = new Map<string, boolean>();

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), "kubelet-logs-"));
  running.clear();
  server = await startKubeletServer({
    host: "127.0.0.1",
    port: 0,
    logsRoot: root,
    podUID: (ns, name) => pods.get(`${ns}/${name}`),
    containerRunning: (ns, name, c) => running.get(`${ns}/${name}/${c}`),
    followPollMs: 20,
    log,
  });
});

afterEach(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

function logFile(container: string, attempt: number): string {
  const dir = join(root, "default_web_uid-1", container);
  mkdirSync(dir, { recursive: true });
  return join(dir, `${attempt}.log`);
}

const T0 = Date.UTC(2026, 10, 22, 1, 23, 16, 578);

function writeLines(file: string, lines: [number, "stdout" | "stderr", string][]): void {
  writeFileSync(file, lines.map(([t, s, text]) => criLogLine(t, s, text)).join(""));
}

async function get(path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${server.port}${path}`);
  return { status: r.status, body: await r.text() };
}

describe("kubelet server", () => {
  it("answers /healthz", async () => {
    expect(await get("/healthz")).toEqual({ status: 200, body: "ok" });
    expect((await get("/nope")).status).toBe(404);
  });

  it("serves the current container's log, with timestamps, tail and limitBytes", async () => {
    writeLines(logFile("app", 0), [
      [T0, "stdout", "one"],
      [T0 + 1, "stderr", "two"],
      [T0 + 2, "stdout", "three"],
    ]);
    expect(await get("/containerLogs/default/web/app")).toEqual({ status: 200, body: "one\ntwo\nthree\n" });
    expect((await get("/containerLogs/default/web/app?timestamps=true")).body).toBe(
      "2026-11-22T01:23:16.578000000Z one\n2026-11-22T01:23:16.579000000Z two\n2026-11-22T01:23:16.580000000Z three\n",
    );
    expect((await get("/containerLogs/default/web/app?tailLines=2")).body).toBe("two\nthree\n");
    expect((await get("/containerLogs/default/web/app?tailLines=0")).body).toBe("");
    expect((await get("/containerLogs/default/web/app?limitBytes=6")).body).toBe("one\ntw");
    expect((await get("/containerLogs/default/web/app?tailLines=x")).status).toBe(400);
  });

  it("joins partial lines and keeps stdout and stderr partials apart", async () => {
    writeFileSync(
      logFile("app", 0),
      "2026-11-22T01:23:16.000000001Z stdout P hel\n" +
        "2026-11-22T01:23:16.000000002Z stderr F err line\n" +
        "2026-11-22T01:23:16.000000003Z stdout F lo world\n" +
        "2026-11-22T01:23:16.000000004Z stdout F \n" +
        "garbage that is not a CRI line\n",
    );
    expect((await get("/containerLogs/default/web/app?timestamps=1")).body).toBe(
      "2026-11-22T01:23:16.000000002Z err line\n2026-11-22T01:23:16.000000001Z hello world\n2026-11-22T01:23:16.000000004Z \n",
    );
  });

  it("filters by sinceTime and sinceSeconds", async () => {
    const now = Date.now();
    writeLines(logFile("app", 0), [
      [now - 3_600_000, "stdout", "an hour ago"],
      [now - 1_000, "stdout", "just now"],
    ]);
    expect((await get("/containerLogs/default/web/app?sinceSeconds=60")).body).toBe("just now\n");
    const since = new Date(now - 7_200_000).toISOString().replace(/\.\d+Z$/, "Z");
    expect((await get(`/containerLogs/default/web/app?sinceTime=${since}`)).body).toBe("an hour ago\njust now\n");
    expect((await get("/containerLogs/default/web/app?sinceTime=yesterday")).status).toBe(400);
  });

  it("serves the previous attempt, and 404s as upstream when there is none", async () => {
    writeLines(logFile("app", 0), [[T0, "stdout", "first run"]]);
    expect(await get("/containerLogs/default/web/app?previous=true")).toEqual({
      status: 404,
      body: 'previous terminated container "app" in pod "web" not found',
    });
    writeLines(logFile("app", 1), [[T0 + 5, "stdout", "second run"]]);
    writeLines(logFile("app", 2), [[T0 + 9, "stdout", "third run"]]);
    expect((await get("/containerLogs/default/web/app")).body).toBe("third run\n");
    expect((await get("/containerLogs/default/web/app?previous=true")).body).toBe("second run\n");
  });

  it("404s for a pod it does not run and a container that has no log yet", async () => {
    expect(await get("/containerLogs/default/other/app")).toEqual({ status: 404, body: 'pod "other" does not exist' });
    expect(await get("/containerLogs/default/web/sidecar")).toEqual({ status: 404, body: 'container "sidecar" in pod "web" is not available' });
  });

  it("follow streams appended lines and ends when a newer attempt replaces the container", async () => {
    const file = logFile("app", 0);
    writeLines(file, [[T0, "stdout", "before"]]);
    const stream = followStream("/containerLogs/default/web/app?follow=true");
    await stream.waitFor("before\n");
    appendFileSync(file, criLogLine(T0 + 1, "stdout", "appended"));
    await stream.waitFor("before\nappended\n");
    // A partial line stays held until its end arrives.
    appendFileSync(file, "2026-11-22T01:23:17.000000000Z stdout P half");
    appendFileSync(file, " line\n2026-11-22T01:23:17.000000001Z stdout F  done\n");
    await stream.waitFor("before\nappended\nhalf line done\n");
    // The container restarts: its last lines are still delivered, then the stream ends.
    appendFileSync(file, criLogLine(T0 + 3, "stdout", "last words"));
    writeLines(logFile("app", 1), [[T0 + 4, "stdout", "new attempt"]]);
    expect(await stream.done).toBe("before\nappended\nhalf line done\nlast words\n");
  });

  it("follow ends when the container stops running, and honours limitBytes", async () => {
    const file = logFile("app", 0);
    running.set("default/web/app", true);
    writeLines(file, [[T0, "stdout", "x"]]);
    const stream = followStream("/containerLogs/default/web/app?follow=true");
    await stream.waitFor("x\n");
    appendFileSync(file, criLogLine(T0 + 1, "stdout", "exiting"));
    running.set("default/web/app", false);
    expect(await stream.done).toBe("x\nexiting\n");

    running.set("default/web/app", true);
    const limited = followStream("/containerLogs/default/web/app?follow=true&limitBytes=12");
    await limited.waitFor("x\nexiting\n");
    appendFileSync(file, criLogLine(T0 + 2, "stdout", "more output"));
    expect(await limited.done).toBe("x\nexiting\nmo");
  });

  it("close() ends follows in progress", async () => {
    writeLines(logFile("app", 0), [[T0, "stdout", "x"]]);
    const stream = followStream("/containerLogs/default/web/app?follow=true");
    await stream.waitFor("x\n");
    await server.close();
    await stream.done;
    server = await startKubeletServer({ host: "127.0.0.1", port: 0, logsRoot: root, podUID: () => undefined, log });
  });
});

/** A streaming GET: the body so far, a wait for it to reach a value, and the whole body once it ends. */
function followStream(path: string): { waitFor(body: string): Promise<void>; done: Promise<string> } {
  let body = "";
  const waiters: { want: string; resolve(): void }[] = [];
  const done = new Promise<string>((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port: server.port, path }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
        for (const w of [...waiters]) if (body === w.want) w.resolve();
      });
      res.on("end", () => resolve(body));
      res.on("error", () => resolve(body));
      res.on("close", () => resolve(body));
    });
    req.on("error", reject);
  });
  return {
    done,
    waitFor: (want) =>
      new Promise<void>((resolve, reject) => {
        if (body === want) return resolve();
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${JSON.stringify(want)}; have ${JSON.stringify(body)}`)), 5_000);
        waiters.push({
          want,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        void done.then(() => body !== want && reject(new Error(`stream ended with ${JSON.stringify(body)} before ${JSON.stringify(want)}`)));
      }),
  };
}

describe("CriLogDecoder", () => {
  it("holds an incomplete physical line until its newline arrives", () => {
    const d = new CriLogDecoder();
    expect(d.feed(Buffer.from("2026-11-22T01:23:16Z stdout F ab"))).toEqual([]);
    const lines = d.feed(Buffer.from("c\n"));
    expect(lines.map((l) => [l.time, l.stream, l.text.toString()])).toEqual([["2026-11-22T01:23:16.000000000Z", "stdout", "abc"]]);
  });
});
