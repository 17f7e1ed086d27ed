// The embedded store's directory lock: one opener per directory, across processes and within one.
//
// Node has no flock(2), so the lock is a file, `kubelab-store.lock`, holding the owner's pid, host,
// boot id and process start time (Linux /proc), created atomically: the content goes to a private
// temp file first and is then hard-linked into place — link(2) fails with EEXIST when the lock
// exists, like O_EXCL, but a lock is never seen half-written. A lock whose owner is gone (no such
// pid, a different boot, or the pid now belongs to a process with another start time, i.e. it was
// reused) is stale and taken over, with a log line. Takeovers are serialized by a guard directory
// (mkdir is atomic), and the stale lock is re-read under the guard, so two openers finding the same
// stale lock cannot both win. A lock from another host (a shared filesystem) cannot be checked and
// counts as held. The lock is removed on close, and on process exit if the owner did not close.

import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { StorageError } from "./interface.ts";

export const LOCK_FILE = "kubelab-store.lock";

interface LockInfo {
  pid: number;
  host: string;
  boot?: string;
  start?: string;
}

/** Locks this process holds: file -> content. Removed at exit if still ours. */
const held = new Map<string, string>();
let exitHook = false;

function readOr(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

const BOOT_ID = readOr("/proc/sys/kernel/random/boot_id");

/** The start time of a process (clock ticks after boot, /proc/PID/stat field 22), where /proc exists. */
function startTime(pid: number): string | undefined {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Field 2 (comm) is in parentheses and may contain spaces; count fields after its closing paren.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest[19];
}

function parseInfo(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid !== "number" || !Number.isInteger(v.pid) || v.pid <= 0 || typeof v.host !== "string") return undefined;
    return v as LockInfo;
  } catch {
    return undefined;
  }
}

/** Why the lock's owner is gone, or undefined when it (may) still run. */
function staleReason(file: string, info: LockInfo): string | undefined {
  if (info.host !== os.hostname()) return undefined;
  if (info.boot !== undefined && BOOT_ID !== undefined && info.boot !== BOOT_ID) return `process ${info.pid} ran before a reboot`;
  if (info.pid === process.pid) {
    // Our pid: either this process holds it (a second open here) or a previous process had our pid.
    return held.has(file) ? undefined : `process ${info.pid} (a previous process with this pid) is gone`;
  }
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return `process ${info.pid} is gone`;
    // EPERM: it exists, owned by another user.
  }
  if (info.start !== undefined) {
    const now = startTime(info.pid);
    if (now !== undefined && now !== info.start) return `process ${info.pid} is gone (the pid was reused)`;
  }
  return undefined;
}

function heldError(dir: string, file: string, info: LockInfo): StorageError {
  const who =
    info.pid === process.pid && info.host === os.hostname()
      ? `this process (pid ${info.pid})`
      : `process ${info.pid}${info.host !== os.hostname() ? ` on host ${info.host}` : ""}`;
  return new StorageError("Unreachable", `storage directory ${dir} is in use by ${who} (lock file ${file}); stop it first, or open another directory`);
}

export interface LockLog {
  warn(obj: object, msg: string): void;
}

/** An acquired directory lock. */
export class DirLock {
  private released = false;
  private constructor(
    readonly file: string,
    private readonly content: string,
  ) {}

  /** Takes the lock of `dir` (which must exist), or throws a one-line StorageError naming the holder. */
  static async acquire(dir: string, log: LockLog): Promise<DirLock> {
    const file = path.join(dir, LOCK_FILE);
    const info: LockInfo = { pid: process.pid, host: os.hostname() };
    if (BOOT_ID !== undefined) info.boot = BOOT_ID;
    const start = startTime(process.pid);
    if (start !== undefined) info.start = start;
    const content = JSON.stringify(info);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await fsp.writeFile(tmp, content + "\n", { mode: 0o644 });
    try {
      for (let attempt = 0; ; attempt++) {
        if (attempt > 200) throw new StorageError("Unreachable", `storage directory ${dir}: could not take the lock file ${file} (it keeps changing)`);
        try {
          await fsp.link(tmp, file);
          held.set(file, content);
          if (!exitHook) {
            exitHook = true;
            process.once("exit", releaseAllSync);
          }
          return new DirLock(file, content);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
        const text = readOr(file);
        if (text === undefined) continue; // removed meanwhile: try again
        const holder = parseInfo(text);
        // An unreadable lock: we always write locks whole (temp file + link), so this is one emptied
        // by a power loss before it reached the disk — its owner died with the machine.
        const reason = holder ? staleReason(file, holder) : "the lock file is unreadable";
        if (holder && reason === undefined) throw heldError(dir, file, holder);
        if (await takeOver(file, text)) {
          log.warn({ lock: file, reason }, `storage directory ${dir}: taking over a stale lock (${reason})`);
        }
      }
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  /** Removes the lock if it is still ours. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    held.delete(this.file);
    if (readOr(this.file) === this.content) await fsp.rm(this.file, { force: true });
  }
}

/** Removes the stale lock `file` if it still holds `seen`, under the takeover guard. False if someone else got there first. */
async function takeOver(file: string, seen: string): Promise<boolean> {
  const guard = file + ".takeover";
  try {
    await fsp.mkdir(guard);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    // Another opener is taking over right now; a guard older than a few seconds is from one that
    // crashed in the middle (the takeover itself takes microseconds).
    const st = await fsp.stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 5_000) await fsp.rmdir(guard).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, 10));
    return false;
  }
  try {
    if (readOr(file) !== seen) return false;
    await fsp.rm(file, { force: true });
    return true;
  } finally {
    await fsp.rmdir(guard).catch(() => undefined);
  }
}

function releaseAllSync(): void {
  for (const [file, content] of held) {
    try {
      if (fs.readFileSync(file, "utf8").trim() === content) fs.unlinkSync(file);
    } catch {
      // already gone
    }
  }
  held.clear();
}
