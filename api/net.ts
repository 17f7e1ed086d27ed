// IPv4 addresses and CIDRs as numbers: the arithmetic behind pod ranges (per zone, per node, per
// pod), the CNI subnet's gateway and the "is this address on a local network" safety checks. Pure.

/** "a.b.c.d" → unsigned 32-bit number, or undefined when malformed. */
export function parseIPv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export interface IPv4CIDR {
  /** The network address (host bits of the input cleared). */
  network: number;
  prefix: number;
  /** Number of addresses: 2^(32 - prefix). */
  size: number;
}

/** "a.b.c.d/n" → its network, prefix and size, or undefined when malformed. */
export function parseCIDR(s: string): IPv4CIDR | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s.trim());
  const addr = m ? parseIPv4(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (addr === undefined || !(prefix >= 0 && prefix <= 32)) return undefined;
  const size = 2 ** (32 - prefix);
  return { network: addr - (addr % size), prefix, size };
}

export function formatCIDR(c: IPv4CIDR): string {
  return `${formatIPv4(c.network)}/${c.prefix}`;
}

export function cidrContains(c: IPv4CIDR, ip: number): boolean {
  return ip >= c.network && ip < c.network + c.size;
}

/** The first `count` consecutive subnets of length `prefix` inside `c` (the caller checks they fit). */
export function subnets(c: IPv4CIDR, prefix: number, count: number): string[] {
  const size = 2 ** (32 - prefix);
  return Array.from({ length: count }, (_, i) => `${formatIPv4(c.network + i * size)}/${prefix}`);
}
