// Pod IP allocation for one simulated node: addresses of the node's podCIDR, which must lie inside
// 127.0.0.0/8 (the safety rule: every simulated pod address is local to this machine). `.1` (the
// first host) is the node; pods get `.2` up to the last address before broadcast, handed out
// round-robin like CNI's host-local, so an address just freed is reused only once the range wraps.

import { formatIPv4, parseCIDR, parseIPv4 } from "../../../api/index.ts";

const LOOPBACK_NET = 127 * 2 ** 24;

export class PodIPAllocator {
  /** The node's own address (the CIDR's first host). */
  readonly nodeIP: string;
  /** Normalised CIDR (network address / prefix). */
  readonly cidr: string;
  private readonly network: number;
  /** Offsets from `network` a pod may get: [first, last]. */
  private readonly first = 2;
  private readonly last: number;
  private readonly used = new Set<number>();
  private cursor: number;

  /** Throws an Error naming the problem when `cidr` is malformed, too small or outside 127.0.0.0/8. */
  constructor(cidr: string) {
    const c = parseCIDR(cidr);
    if (!c) throw new Error(`podCIDR ${JSON.stringify(cidr)} is not an IPv4 CIDR like 127.64.0.0/24`);
    const { prefix, size } = c;
    this.network = c.network;
    if (prefix < 8 || Math.floor(this.network / 2 ** 24) * 2 ** 24 !== LOOPBACK_NET) {
      throw new Error(
        `podCIDR ${cidr} is outside 127.0.0.0/8: simulated pod IPs must be loopback addresses so that no packet leaves this machine`,
      );
    }
    this.last = size - 2;
    if (this.last < this.first) throw new Error(`podCIDR ${cidr} is too small: it needs room for the node (.1) and at least one pod (.2)`);
    this.cidr = `${formatIPv4(this.network)}/${prefix}`;
    this.nodeIP = formatIPv4(this.network + 1);
    this.cursor = this.last; // the first allocation wraps to `first`
  }

  /** Number of pod addresses in the range. */
  get capacity(): number {
    return this.last - this.first + 1;
  }

  /** The next free address after the last one handed out; throws (host-local's message) when the range is full. */
  allocate(): string {
    const n = this.capacity;
    for (let i = 0; i < n; i++) {
      this.cursor = this.cursor >= this.last ? this.first : this.cursor + 1;
      if (!this.used.has(this.cursor)) {
        this.used.add(this.cursor);
        return formatIPv4(this.network + this.cursor);
      }
    }
    throw new Error(
      `failed to allocate for range 0: no IP addresses available in range set: ${formatIPv4(this.network + this.first)}-${formatIPv4(this.network + this.last)}`,
    );
  }

  /** Frees an address; unknown addresses are ignored (release is idempotent). */
  release(ip: string): void {
    const n = parseIPv4(ip);
    if (n !== undefined) this.used.delete(n - this.network);
  }
}
