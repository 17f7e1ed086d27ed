// The host-state record: the journal survives a torn last line, the bridge alias round-trips and
// refuses what it cannot hold, and an owner is alive only with its PID and start time.

import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bridgeAlias, clearJournal, currentOwner, isAlive, journalOwner, journalPath, ownerAlive, parseBridgeAlias, processStart, readJournal, record } from "./hoststate.ts";

const linux = process.platform === "linux";
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("the host-state journal", () => {
  it("reads back every entry in order, skips a line torn by a crash, and is gone once cleared", () => {
    const d = mkdtempSync(join(tmpdir(), "kubelab-journal-"));
    dirs.push(d);
    expect(readJournal(d)).toEqual([]);
    record(d, { kind: "owner", pid: 42, start: "777", dataDir: d, netns: "1", at: "2026-01-01T00:00:00.000Z" });
    record(d, { kind: "bridge", name: "kubelab0", subnet: "10.88.0.0/16", gateway: "10.88.0.1" });
    appendFileSync(journalPath(d), '{"kind":"route","ci'); // killed mid-write
    const entries = readJournal(d);
    expect(entries.map((e) => e.kind)).toEqual(["owner", "bridge"]);
    expect(journalOwner(entries)).toEqual({ pid: 42, start: "777", dataDir: d });
    clearJournal(d);
    expect(readJournal(d)).toEqual([]);
  });
});

describe("the owner on the bridge alias", () => {
  it("round-trips pid, start time and data dir, including spaces in the path", () => {
    const alias = bridgeAlias({ pid: 123, start: "456" }, "/tmp/my data/dir");
    expect(alias).toBe("kubelab pid=123 start=456 dir=/tmp/my data/dir");
    expect(parseBridgeAlias(alias)).toEqual({ pid: 123, start: "456", dataDir: "/tmp/my data/dir" });
  });

  it("is not a kubelab owner without the prefix or an absolute path", () => {
    expect(parseBridgeAlias(undefined)).toBeUndefined();
    expect(parseBridgeAlias("")).toBeUndefined();
    expect(parseBridgeAlias("my own bridge")).toBeUndefined();
    expect(parseBridgeAlias("kubelab pid=1 start=2 dir=relative")).toBeUndefined();
  });

  it("refuses a data dir it could not write in 255 bytes or inside ip's quotes", () => {
    expect(() => bridgeAlias({ pid: 1, start: "2" }, "/" + "x".repeat(300))).toThrow(/too long/);
    expect(() => bridgeAlias({ pid: 1, start: "2" }, '/tmp/a"b')).toThrow(/cannot be recorded/);
  });
});

describe.skipIf(!linux)("owners", () => {
  it("this process is alive; a PID with another start time is not the same owner", () => {
    const me = currentOwner();
    expect(me.start).toBe(processStart(process.pid));
    expect(ownerAlive(me)).toBe(true);
    expect(ownerAlive({ pid: me.pid, start: String(Number(me.start) + 1) })).toBe(false);
  });

  it("a killed owner is dead, whether or not its parent has reaped it yet", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    await new Promise((r) => child.once("spawn", r));
    const pid = child.pid!;
    const owner = { pid, start: processStart(pid)! };
    expect(ownerAlive(owner)).toBe(true);
    process.kill(pid, "SIGKILL");
    for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 10));
    expect(isAlive(pid)).toBe(false);
    expect(ownerAlive(owner)).toBe(false);
  });
});
