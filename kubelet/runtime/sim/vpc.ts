// A zone's VPC subnet as the simulated cloud hands out its addresses (the EKS VPC CNI model: nodes
// and pods both take addresses of the zone's subnet). AWS reserves five addresses of every subnet —
// the network address, .1 (the VPC router), .2 (DNS), .3 (future use) and the broadcast address —
// so a /28 holds 11. Addresses are handed out round-robin, so one just freed is reused only once
// the range wraps (as ipamd's cooldown keeps a released IP out of use for a while).

import { formatIPv4, parseCIDR, parseIPv4 } from "../../../api/index.ts";

const LOOPBACK_NET = 127 * 2 ** 24;
/** Offsets from the network address AWS keeps for itself, plus the last (broadcast). */
const RESERVED_LOW = 4;

/** What a sandbox needs from IPAM (a node's own range, or the zone's subnet shared by every node). */
export interface PodAddressAllocator {
  allocate(): string;
  release(ip: string): void;
}

export class SubnetIPAM implements PodAddressAllocator {
  /** Normalised CIDR (network address / prefix). */
  readonly cidr: string;
  readonly zone: string;
  private readonly network: number;
  private readonly first = RESERVED_LOW;
  private readonly last: number;
  private readonly used = new Set<number>();
  private cursor: number;

  /** Throws an Error naming the problem when `cidr` is malformed, outside 127.0.0.0/8, or holds no usable address. */
  constructor(zone: string, cidr: string) {
    const c = parseCIDR(cidr);
    if (!c) throw new Error(`subnet ${JSON.stringify(cidr)} of zone ${zone} is not an IPv4 CIDR like 127.64.0.0/16`);
    if (c.prefix < 8 || Math.floor(c.network / 2 ** 24) * 2 ** 24 !== LOOPBACK_NET) {
      throw new Error(`subnet ${cidr} of zone ${zone} is outside 127.0.0.0/8: simulated node and pod addresses must be loopback ones, so that no packet leaves this machine`);
    }
    this.zone = zone;
    this.network = c.network;
    this.last = c.size - 2;
    if (c.prefix > 28) throw new Error(`subnet ${cidr} of zone ${zone} is too small: AWS reserves 5 addresses of a subnet, a /28 is the smallest that holds any`);
    this.cidr = `${formatIPv4(this.network)}/${c.prefix}`;
    this.cursor = this.last; // the first allocation wraps to `first`
  }

  /** Usable addresses (the subnet less AWS's five). */
  get capacity(): number {
    return this.last - this.first + 1;
  }

  get free(): number {
    return this.capacity - this.used.size;
  }

  /** True when `ip` lies in the usable part of the subnet. */
  contains(ip: string): boolean {
    const n = parseIPv4(ip);
    return n !== undefined && n - this.network >= this.first && n - this.network <= this.last;
  }

  /** The next free address; throws with the subnet named when none is left (the VPC CNI's failure). */
  allocate(): string {
    for (let i = 0; i < this.capacity; i++) {
      this.cursor = this.cursor >= this.last ? this.first : this.cursor + 1;
      if (!this.used.has(this.cursor)) {
        this.used.add(this.cursor);
        return formatIPv4(this.network + this.cursor);
      }
    }
    throw new Error(`failed to assign an IP address to container: no free addresses in subnet ${this.zone} (${this.cidr})`);
  }

  /** Takes a particular address (a node keeping its InternalIP across a pool restart); false when it is taken or not in the subnet. */
  reserve(ip: string): boolean {
    if (!this.contains(ip)) return false;
    const off = parseIPv4(ip)! - this.network;
    if (this.used.has(off)) return false;
    this.used.add(off);
    return true;
  }

  /** Frees an address; unknown ones are ignored (release is idempotent). */
  release(ip: string): void {
    const n = parseIPv4(ip);
    if (n !== undefined) this.used.delete(n - this.network);
  }
}
