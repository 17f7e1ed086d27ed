import { describe, expect, it } from "vitest";
import { SubnetIPAM } from "./vpc.ts";

describe("SubnetIPAM", () => {
  it("keeps AWS's five reserved addresses out: a /28 holds .4-.14", () => {
    const ipam = new SubnetIPAM("local-1a", "127.40.0.0/28");
    expect(ipam.capacity).toBe(11);
    const got = Array.from({ length: 11 }, () => ipam.allocate());
    expect(got[0]).toBe("127.40.0.4");
    expect(got[10]).toBe("127.40.0.14");
    expect(() => ipam.allocate()).toThrow("failed to assign an IP address to container: no free addresses in subnet local-1a (127.40.0.0/28)");
  });

  it("hands out round-robin: a freed address comes back only after the range wraps", () => {
    const ipam = new SubnetIPAM("z", "127.40.0.16/28");
    const a = ipam.allocate();
    ipam.allocate();
    ipam.release(a);
    expect(ipam.allocate()).toBe("127.40.0.22");
    expect(ipam.free).toBe(9);
  });

  it("reserves a particular address once, only inside the usable range", () => {
    const ipam = new SubnetIPAM("z", "127.40.1.0/24");
    expect(ipam.reserve("127.40.1.9")).toBe(true);
    expect(ipam.reserve("127.40.1.9")).toBe(false);
    expect(ipam.reserve("127.40.1.2")).toBe(false);
    expect(ipam.reserve("127.40.2.9")).toBe(false);
    expect(ipam.free).toBe(ipam.capacity - 1);
  });

  it("refuses subnets outside loopback, malformed or too small", () => {
    expect(() => new SubnetIPAM("z", "10.0.0.0/16")).toThrow(/outside 127\.0\.0\.0\/8/);
    expect(() => new SubnetIPAM("z", "127.0.0.0/29")).toThrow(/too small/);
    expect(() => new SubnetIPAM("z", "127.0.0/16")).toThrow(/not an IPv4 CIDR/);
  });
});
