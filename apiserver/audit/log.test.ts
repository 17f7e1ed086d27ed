import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Event } from "./audit.ts";
import { LogBackend } from "./log.ts";

function event(i: number, pad = 0): Event {
  return {
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID: `id-${i}`,
    stage: "ResponseComplete",
    requestURI: `/api/v1/namespaces/default/pods/p${i}${"x".repeat(pad)}`,
    verb: "get",
    user: { username: "alice" },
    requestReceivedTimestamp: "2025-01-01T00:00:00.000000Z",
    stageTimestamp: "2025-01-01T00:00:00.000100Z",
  };
}

function dir(): string {
  return mkdtempSync(join(tmpdir(), "audit-log-"));
}

describe("the audit log backend", () => {
  it("writes a burst of 10,000 events completely, one JSON Event per line, by close", async () => {
    const d = dir();
    const path = join(d, "audit.log");
    const b = new LogBackend({ path });
    for (let i = 0; i < 10_000; i++) expect(b.processEvents(event(i))).toBe(true);
    await b.close();
    const lines = readFileSync(path, "utf8").split("\n");
    expect(lines.pop()).toBe("");
    expect(lines).toHaveLength(10_000);
    expect(lines.map((l) => (JSON.parse(l) as Event).auditID)).toEqual(Array.from({ length: 10_000 }, (_, i) => `id-${i}`));
    expect(b.stats).toEqual({ written: 10_000, dropped: 0 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // After close, events are dropped and counted, not written.
    expect(b.processEvents(event(1))).toBe(false);
    expect(b.stats.dropped).toBe(1);
  });

  it("appends to an existing file", async () => {
    const path = join(dir(), "audit.log");
    writeFileSync(path, '{"old":true}\n');
    const b = new LogBackend({ path });
    b.processEvents(event(1));
    await b.close();
    expect(readFileSync(path, "utf8").split("\n").filter(Boolean)).toHaveLength(2);
  });

  it("rotates by size into timestamped backups and keeps only maxBackups of them", async () => {
    const d = dir();
    const path = join(d, "audit.log");
    const times = [Date.UTC(2025, 4, 1, 10, 0, 0, 0)];
    let t = times[0]!;
    // Each line is ~1 KiB; the limit is 10 KiB: about ten lines a file.
    const b = new LogBackend({ path, maxSizeMB: 10 / 1024, maxBackups: 3, now: () => new Date((t += 1000)) });
    const line = JSON.stringify(event(0, 800)).length + 1;
    for (let i = 0; i < 100; i++) b.processEvents(event(i, 800));
    await b.close();
    const files = readdirSync(d).sort();
    expect(files).toHaveLength(4);
    expect(files[3]).toBe("audit.log");
    for (const f of files.slice(0, 3)) expect(f).toMatch(/^audit-2025-05-01T10-\d\d-\d\d\.000\.log$/);
    for (const f of files) expect(statSync(join(d, f)).size).toBeLessThanOrEqual(10 * 1024);
    // No line is split across files, and the newest backups hold the events just before the current file's.
    const all = files.flatMap((f) => readFileSync(join(d, f), "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as Event).auditID));
    const perFile = Math.floor((10 * 1024) / line);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => `id-${100 - all.length + i}`));
    expect(all.length).toBeGreaterThanOrEqual(3 * perFile + 1);
    expect(b.stats.written).toBe(100);
  });

  it("removes backups older than maxAgeDays by the time in their names", async () => {
    const d = dir();
    const path = join(d, "audit.log");
    writeFileSync(join(d, "audit-2020-01-01T00-00-00.000.log"), "old\n");
    writeFileSync(join(d, "unrelated-2020-01-01T00-00-00.000.log"), "keep\n");
    const b = new LogBackend({ path, maxSizeMB: 2 / 1024, maxAgeDays: 7, now: () => new Date(Date.UTC(2025, 0, 1)) });
    for (let i = 0; i < 10; i++) b.processEvents(event(i, 800));
    await b.close();
    const files = readdirSync(d);
    expect(files).not.toContain("audit-2020-01-01T00-00-00.000.log");
    expect(files).toContain("unrelated-2020-01-01T00-00-00.000.log");
    // Several rotations within one millisecond of the (frozen) clock: each backup got its own name.
    expect(files.filter((f) => f.startsWith("audit-2025-01-01T00-00-00.")).length).toBeGreaterThanOrEqual(3);
  });

  it("drops and counts events while too much waits for the disk, and says so once", async () => {
    const errors: string[] = [];
    const b = new LogBackend({ path: join(dir(), "audit.log"), maxBufferedBytes: 1000, onError: (e) => errors.push(e.message) });
    for (let i = 0; i < 10; i++) b.processEvents(event(i));
    await b.flush(); // serialized: ~2.5 KiB were waiting at once at most, nothing over the bound yet
    for (let i = 0; i < 10; i++) b.processEvents(event(i));
    b.flush(); // serialize now; the write is in flight
    const accepted = b.processEvents(event(99));
    await b.close();
    expect(accepted).toBe(false);
    expect(b.stats.dropped).toBe(1);
    expect(b.stats.written).toBe(20);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/buffer full/);
  });
});
