// The Service IP and NodePort allocators, as upstream's pkg/registry/core/service/ipallocator and
// portallocator: a bitmap over the range, kept in the store as a RangeAllocation object
// (/registry/ranges/serviceips, /registry/ranges/servicenodeports) and changed only by
// compare-and-swap on the key's revision, so several apiservers on one store never hand out the
// same IP or port. The bitmap key is not a served resource; the registry reads it as a plain object.

import type { Backend, KeyValue } from "../../../storage/index.ts";

export const SERVICE_IPS_KEY = "/registry/ranges/serviceips";
export const SERVICE_NODE_PORTS_KEY = "/registry/ranges/servicenodeports";
/** Today's default --service-cluster-ip-range (kubelets blackhole the same range). */
export const DEFAULT_SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16";
/** kube-apiserver's default --service-node-port-range. */
export const DEFAULT_SERVICE_NODE_PORT_RANGE = "30000-32767";

// ---- ranges --------------------------------------------------------------------------------------

export function ipToNumber(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1, 5).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function ipToString(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join(".");
}

/** An IPv4 service CIDR. Offsets count from the first usable address (network and broadcast excluded). */
export class IPRange {
  readonly base: number;
  readonly size: number;
  constructor(readonly cidr: string) {
    const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
    const ip = m ? ipToNumber(m[1]!) : undefined;
    const bits = m ? Number(m[2]) : NaN;
    if (!m || ip === undefined || bits > 32) throw new Error(`invalid CIDR address: ${cidr}`);
    // As kube-apiserver: the bitmap would be too large beyond a /12 (IPv4), and a /31 or /32 has no room.
    if (bits < 12) throw new Error(`${cidr} is too large; for 32-bit addresses, the mask must be >= 12`);
    if (bits > 30) throw new Error(`${cidr} is too small; the mask must be <= 30`);
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    const net = (ip & mask) >>> 0;
    this.base = net + 1;
    this.size = 2 ** (32 - bits) - 2;
    this.cidr = `${ipToString(net)}/${bits}`;
  }
  offsetOf(ip: string): number | undefined {
    const n = ipToNumber(ip);
    if (n === undefined) return undefined;
    const off = n - this.base;
    return off >= 0 && off < this.size ? off : undefined;
  }
  ipAt(offset: number): string {
    return ipToString((this.base + offset) >>> 0);
  }
  /** The lower band kept for static (requested) IPs, as upstream's calculateRangeOffset. */
  get staticBand(): number {
    return rangeOffset(this.size, 16, 256, 16);
  }
}

/** A NodePort range "min-max" (or a single port), as --service-node-port-range. */
export class PortRange {
  readonly base: number;
  readonly size: number;
  constructor(text: string) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || lo < 1 || hi > 65535 || hi < lo) throw new Error(`unable to parse port range: ${text}`);
    this.base = lo;
    this.size = hi - lo + 1;
  }
  toString(): string {
    return `${this.base}-${this.base + this.size - 1}`;
  }
  offsetOf(port: number): number | undefined {
    const off = port - this.base;
    return Number.isInteger(port) && off >= 0 && off < this.size ? off : undefined;
  }
  get staticBand(): number {
    return rangeOffset(this.size, 16, 128, 32);
  }
}

/** min(max(min, size/step), max), 0 for tiny ranges: the low band dynamic allocation tries last. */
function rangeOffset(size: number, min: number, max: number, step: number): number {
  if (size < min) return 0;
  return Math.min(max, Math.max(min, Math.floor(size / step)));
}

// ---- the bitmap ----------------------------------------------------------------------------------

/** A bitmap of `size` bits: bit i set means offset i is allocated. */
export class AllocationBitmap {
  readonly bits: Uint8Array;
  constructor(
    readonly size: number,
    bits?: Uint8Array,
  ) {
    this.bits = new Uint8Array(Math.ceil(size / 8));
    if (bits) this.bits.set(bits.subarray(0, this.bits.length));
    // Bits past the end (a range that shrank) are dropped.
    const tail = size % 8;
    if (tail && this.bits.length) this.bits[this.bits.length - 1]! &= (1 << tail) - 1;
  }
  static fromBase64(size: number, data: string): AllocationBitmap {
    return new AllocationBitmap(size, new Uint8Array(Buffer.from(data, "base64")));
  }
  toBase64(): string {
    return Buffer.from(this.bits).toString("base64");
  }
  has(i: number): boolean {
    return (this.bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }
  set(i: number): void {
    this.bits[i >> 3]! |= 1 << (i & 7);
  }
  clear(i: number): void {
    this.bits[i >> 3]! &= ~(1 << (i & 7));
  }
  count(): number {
    let n = 0;
    for (const b of this.bits) {
      let v = b;
      while (v) {
        v &= v - 1;
        n++;
      }
    }
    return n;
  }
  /** Every set offset, ascending. */
  offsets(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.size; i++) if (this.has(i)) out.push(i);
    return out;
  }
  /**
   * A free offset, or undefined when full: first a random probe of [band, size), then [0, band)
   * (upstream's bitmap with offset: dynamic allocations avoid the low band static IPs come from).
   */
  randomFree(band: number, random: () => number): number | undefined {
    const scan = (lo: number, hi: number): number | undefined => {
      const n = hi - lo;
      if (n <= 0) return undefined;
      const start = Math.floor(random() * n);
      for (let k = 0; k < n; k++) {
        const i = lo + ((start + k) % n);
        if (!this.has(i)) return i;
      }
      return undefined;
    };
    return scan(band, this.size) ?? scan(0, Math.min(band, this.size));
  }
}

// ---- the stored RangeAllocation -------------------------------------------------------------------

/** The stored object (upstream's api.RangeAllocation: the range and the bitmap bytes). */
export interface RangeAllocationObject {
  apiVersion: "v1";
  kind: "RangeAllocation";
  metadata: { name: string };
  range: string;
  data: string;
}

export class RangeFullError extends Error {}

/**
 * One bitmap kept at `key`. Every change is a read-modify-CAS loop on the key's revision; the key
 * is created (empty) on first use. A stored bitmap for a different range is read bit-for-bit (the
 * repair at start rebuilds it from the Services).
 */
export class RangeAllocator {
  constructor(
    private readonly backend: Backend,
    readonly key: string,
    /** The range as written in the object ("10.96.0.0/16", "30000-32767"). */
    readonly range: string,
    readonly size: number,
    readonly band: number,
    private readonly random: () => number = Math.random,
  ) {}

  private decode(kv: KeyValue | undefined): AllocationBitmap {
    if (!kv) return new AllocationBitmap(this.size);
    const obj = JSON.parse(kv.value) as Partial<RangeAllocationObject>;
    return AllocationBitmap.fromBase64(this.size, typeof obj.data === "string" ? obj.data : "");
  }

  private encode(bm: AllocationBitmap): string {
    const obj: RangeAllocationObject = { apiVersion: "v1", kind: "RangeAllocation", metadata: { name: this.key.slice(this.key.lastIndexOf("/") + 1) }, range: this.range, data: bm.toBase64() };
    return JSON.stringify(obj);
  }

  /** The stored bitmap and the revision it was read at (0: no key yet). */
  async snapshot(): Promise<{ bitmap: AllocationBitmap; revision: number }> {
    const { kv } = await this.backend.get(this.key);
    return { bitmap: this.decode(kv), revision: kv?.modRevision ?? 0 };
  }

  /**
   * Writes `bitmap` if the key is still at `revision` (0: absent). False when it moved (the caller re-reads).
   */
  async restore(bitmap: AllocationBitmap, revision: number): Promise<boolean> {
    const value = this.encode(bitmap);
    const res = revision === 0 ? await this.backend.create(this.key, value) : await this.backend.update(this.key, value, revision);
    return res.succeeded;
  }

  /** The CAS loop: `change` mutates the bitmap and returns its result; unchanged bitmaps are not written. */
  private async modify<T>(change: (bm: AllocationBitmap) => T): Promise<T> {
    let { kv } = await this.backend.get(this.key);
    for (let attempt = 0; ; attempt++) {
      const bm = this.decode(kv);
      const before = bm.toBase64();
      const result = change(bm);
      const value = this.encode(bm);
      if (kv && bm.toBase64() === before && JSON.parse(kv.value).range === this.range) return result;
      const res = kv ? await this.backend.update(this.key, value, kv.modRevision) : await this.backend.create(this.key, value);
      if (res.succeeded) return result;
      kv = res.kv ?? (await this.backend.get(this.key)).kv;
      if (attempt >= 3) await new Promise((r) => setTimeout(r, this.random() * Math.min(20, attempt)));
    }
  }

  /** Marks `offset` allocated; false when it already was. */
  allocate(offset: number): Promise<boolean> {
    return this.modify((bm) => {
      if (bm.has(offset)) return false;
      bm.set(offset);
      return true;
    });
  }

  /** Allocates a free offset (random, upper band first). Throws RangeFullError when none is left. */
  async allocateNext(): Promise<number> {
    const got = await this.modify((bm) => {
      const i = bm.randomFree(this.band, this.random);
      if (i !== undefined) bm.set(i);
      return i;
    });
    if (got === undefined) throw new RangeFullError("range is full");
    return got;
  }

  /** Frees offsets (ones already free are ignored). */
  async release(...offsets: number[]): Promise<void> {
    if (offsets.length === 0) return;
    await this.modify((bm) => {
      for (const i of offsets) if (i >= 0 && i < this.size) bm.clear(i);
    });
  }
}
