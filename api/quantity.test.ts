import { describe, expect, it } from "vitest";
import { isValidQuantity, parseQuantity, parseQuantityMilli, parseQuantityValue } from "./quantity.ts";
import { scaledValue } from "./intstr.ts";

describe("parseQuantity", () => {
  const cases: { name: string; in: string | number; want: number }[] = [
    { name: "a plain integer is in base units", in: "3", want: 3 },
    { name: "a number input is accepted", in: 2, want: 2 },
    { name: "milli units divide by a thousand", in: "250m", want: 0.25 },
    { name: "binary suffixes are powers of 1024", in: "1Gi", want: 1024 ** 3 },
    { name: "Ki is 1024", in: "4Ki", want: 4096 },
    { name: "decimal suffixes are powers of ten", in: "2M", want: 2e6 },
    { name: "k is a thousand", in: "1.5k", want: 1500 },
    { name: "an exponent scales by ten", in: "1e3", want: 1000 },
    { name: "a capital exponent works too", in: "5E-1", want: 0.5 },
    { name: "nano units are tiny", in: "1n", want: 1e-9 },
    { name: "a leading sign is allowed", in: "-1", want: -1 },
    { name: "a fraction without leading digit parses", in: ".5", want: 0.5 },
    { name: "E alone is exa", in: "1E", want: 1e18 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseQuantity(c.in)).toBeCloseTo(c.want, 12);
    });
  }

  const bad = ["", "abc", "1.2.3", "1KB", "Mi", "1 Gi", "1e"];
  for (const b of bad) {
    it(`rejects ${JSON.stringify(b)} with Kubernetes' message`, () => {
      expect(isValidQuantity(b)).toBe(false);
      expect(() => parseQuantity(b)).toThrow("quantities must match the regular expression");
    });
  }
});

describe("parseQuantityMilli", () => {
  const cases: { name: string; in: string | number; want: number }[] = [
    { name: "one core is a thousand millicores", in: "1", want: 1000 },
    { name: "milli quantities are exact", in: "100m", want: 100 },
    { name: "decimal fractions are computed exactly", in: "0.1", want: 100 },
    { name: "sub-milli values round up", in: "1n", want: 1 },
    { name: "binary quantities scale exactly", in: "1Mi", want: 1048576000 },
    { name: "exponents are applied exactly", in: "2.5e2", want: 250000 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseQuantityMilli(c.in)).toBe(c.want);
    });
  }
  it("parseQuantityValue rounds up to whole units", () => {
    expect(parseQuantityValue("1500m")).toBe(2);
    expect(parseQuantityValue("128Mi")).toBe(134217728);
  });
});

describe("scaledValue", () => {
  const cases: { name: string; v: number | string; total: number; up: boolean; want: number }[] = [
    { name: "an integer is returned unchanged", v: 3, total: 10, up: true, want: 3 },
    { name: "25% of 10 rounded up is 3", v: "25%", total: 10, up: true, want: 3 },
    { name: "25% of 10 rounded down is 2", v: "25%", total: 10, up: false, want: 2 },
    { name: "100% of 7 is 7", v: "100%", total: 7, up: false, want: 7 },
    { name: "0% is 0", v: "0%", total: 7, up: true, want: 0 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(scaledValue(c.v, c.total, c.up)).toBe(c.want);
    });
  }
  it("a string that is not a percentage is an error", () => {
    expect(() => scaledValue("5", 10, true)).toThrow("string is not a percentage");
    expect(() => scaledValue("x%", 10, true)).toThrow("invalid value");
    expect(() => scaledValue(undefined, 10, true)).toThrow("nil value for IntOrString");
  });
});
