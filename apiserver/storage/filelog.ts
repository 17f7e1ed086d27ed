// The embedded store's on-disk log (`file://DIR`): its record format, and the scan that replays it
// on open, telling a torn tail (a crash mid-append: dropped) from corruption (an error).
//
// One record per line: 8 lowercase hex digits of the CRC-32 of the JSON (its UTF-8 bytes), a
// space, the JSON, "\n". A batch of records is appended with one write and made durable with one
// fdatasync before any of its writes is acknowledged, so a crash can only leave a damaged suffix of
// the last batch: records that fail their checksum (or lack their newline) at the end of the file,
// with no intact record after them. That tail was never acknowledged and is dropped. A damaged
// record with intact records after it is not a torn write — the file was altered after it was
// written (disk, filesystem or an editor) — and opening fails rather than silently losing data.
//
// Logs written before records were checksummed (plain JSON lines, the first byte is "{") are still
// read, with the old rule (an unparsable last line is a torn tail), and rewritten in this format.

import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { crc32 } from "node:zlib";
import { StorageError } from "./interface.ts";

/** The log file inside the persistence directory. */
export const LOG_FILE = "kubelab-store.jsonl";

export type LogRecord =
  | { type: "snapshot"; rev: number }
  | { type: "kv"; key: string; value: string; create: number; mod: number }
  | { type: "put"; rev: number; key: string; value: string }
  | { type: "delete"; rev: number; key: string };

/** One record as it is appended to the log (with its checksum and newline). */
export function encodeRecord(r: LogRecord): string {
  const json = JSON.stringify(r);
  return crc32(json).toString(16).padStart(8, "0") + " " + json + "\n";
}

export interface ScannedLog {
  records: LogRecord[];
  /** Bytes of the file that hold intact records; the file is truncated to this when shorter. */
  validBytes: number;
  /** A damaged tail that was dropped: where it started and how long it was. */
  torn?: { offset: number; bytes: number; reason: string };
  /** The file is in the old unchecksummed format (rewrite it). */
  legacy: boolean;
}

const NL = 0x0a;
const SPACE = 0x20;
const HEX = /^[0-9a-f]{8}$/;

/** Checks one complete line (without its newline); the record, or why it is not one. */
function decodeLine(buf: Buffer, start: number, end: number): LogRecord | string {
  if (end - start < 11 || buf[start + 8] !== SPACE) return "not a checksummed record";
  const sum = buf.toString("latin1", start, start + 8);
  if (!HEX.test(sum)) return "not a checksummed record";
  const body = buf.subarray(start + 9, end);
  if (crc32(body) !== parseInt(sum, 16)) return "checksum mismatch";
  try {
    const rec = JSON.parse(body.toString("utf8")) as LogRecord;
    if (typeof rec !== "object" || rec === null || typeof rec.type !== "string") return "not a record";
    return rec;
  } catch {
    return "checksum matches but the record is not JSON";
  }
}

/**
 * Reads a whole log. Throws StorageError (InternalError) when a damaged record is followed by an
 * intact one (corruption, not a torn write).
 */
export function scanLog(buf: Buffer, file: string): ScannedLog {
  if (buf.length > 0 && buf[0] === 0x7b /* { */) return scanLegacy(buf, file);
  const records: LogRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(NL, pos);
    const rec = nl === -1 ? "unterminated record" : decodeLine(buf, pos, nl);
    if (typeof rec === "string") {
      // Damaged. A torn tail only if no intact record follows.
      for (let p = nl === -1 ? buf.length : nl + 1; p < buf.length; ) {
        const n = buf.indexOf(NL, p);
        if (n === -1) break;
        if (typeof decodeLine(buf, p, n) !== "string") {
          throw new StorageError(
            "InternalError",
            `storage log ${file} is corrupt at byte ${pos} (record ${records.length + 1}: ${rec}) and intact records follow it, so it is not a write torn by a crash; restore the directory from a backup, or move the log aside to start empty`,
          );
        }
        p = n + 1;
      }
      return { records, validBytes: pos, torn: { offset: pos, bytes: buf.length - pos, reason: rec }, legacy: false };
    }
    records.push(rec);
    pos = nl + 1;
  }
  return { records, validBytes: pos, legacy: false };
}

/** The pre-checksum format: JSON lines; an unparsable or unterminated last line is a torn tail. */
function scanLegacy(buf: Buffer, file: string): ScannedLog {
  const records: LogRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(NL, pos);
    const end = nl === -1 ? buf.length : nl;
    const raw = buf.toString("utf8", pos, end);
    let rec: LogRecord | undefined;
    try {
      rec = raw.trim() === "" ? undefined : (JSON.parse(raw) as LogRecord);
    } catch {
      if (nl === -1 || buf.toString("utf8", nl + 1).trim() === "") {
        return { records, validBytes: pos, torn: { offset: pos, bytes: buf.length - pos, reason: "unparsable last line" }, legacy: true };
      }
      throw new StorageError("InternalError", `storage log ${file} is corrupt at byte ${pos}: an unparsable line with more lines after it`);
    }
    if (nl === -1) {
      return { records, validBytes: pos, torn: { offset: pos, bytes: buf.length - pos, reason: "unterminated last line" }, legacy: true };
    }
    if (rec) records.push(rec);
    pos = nl + 1;
  }
  return { records, validBytes: pos, legacy: true };
}

/** fsync a directory, so a file created or renamed in it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  let h: fsp.FileHandle | undefined;
  try {
    h = await fsp.open(dir, fs.constants.O_RDONLY);
    await h.sync();
  } catch {
    // some filesystems refuse fsync on directories
  } finally {
    await h?.close();
  }
}
