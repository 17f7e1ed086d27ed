import { describe, expect, it } from "vitest";
import { cidrContains, formatCIDR, formatIPv4, parseCIDR, parseIPv4, subnets } from "./net.ts";

describe("IPv4 and CIDR arithmetic", () => {
  it("parses and formats addresses, refusing malformed ones", () => {
    expect(parseIPv4("127.64.1.2")).toBe(127 * 2 ** 24 + 64 * 2 ** 16 + 256 + 2);
    expect(formatIPv4(parseIPv4("255.255.255.255")!)).toBe("255.255.255.255");
    for (const bad of ["127.64.1", "127.64.1.256", "a.b.c.d", "1.2.3.4.5", ""]) expect(parseIPv4(bad)).toBeUndefined();
  });

  it("parses a CIDR to its network (host bits cleared), prefix and size", () => {
    expect(parseCIDR("127.64.255.7/22")).toEqual({ network: parseIPv4("127.64.252.0"), prefix: 22, size: 1024 });
    expect(formatCIDR(parseCIDR(" 10.88.0.0/16 ")!)).toBe("10.88.0.0/16");
    for (const bad of ["10.88.0.0", "10.88.0.0/33", "10.88.0/16", "x/8"]) expect(parseCIDR(bad)).toBeUndefined();
  });

  it("tells whether an address is inside, and lists consecutive subnets", () => {
    const c = parseCIDR("10.88.0.0/16")!;
    expect(cidrContains(c, parseIPv4("10.88.255.255")!)).toBe(true);
    expect(cidrContains(c, parseIPv4("10.89.0.0")!)).toBe(false);
    expect(subnets(parseCIDR("127.64.0.0/10")!, 12, 3)).toEqual(["127.64.0.0/12", "127.80.0.0/12", "127.96.0.0/12"]);
  });
});
