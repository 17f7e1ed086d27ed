// resource.Quantity parsing: "100m", "1.5Gi", "2e3", 4 — to numbers in base units.

/** A resource quantity as it appears in JSON: normally a string, numbers are accepted as well. */
export type Quantity = string | number;

/** Resource name → quantity, e.g. { cpu: "500m", memory: "128Mi" }. */
export type ResourceList = Record<string, Quantity>;

/** The message Kubernetes gives for a quantity that does not parse. */
export const QUANTITY_FORMAT_ERROR =
  "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const BINARY: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

interface ParsedQuantity {
  negative: boolean;
  /** Digits of the mantissa with the decimal point removed. */
  digits: string;
  /** Power of ten applied to `digits` (includes the removed fraction digits). */
  exp10: number;
  /** Power of 1024 applied (binary suffixes). */
  exp1024: number;
}

function parse(input: string | number): ParsedQuantity | undefined {
  let s: string;
  if (typeof input === "number") {
    if (!Number.isFinite(input)) return undefined;
    s = String(input);
  } else if (typeof input === "string") {
    s = input;
  } else {
    return undefined;
  }
  const m = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)$/.exec(s);
  if (!m) return undefined;
  const [, sign, whole, frac = "", suffix] = m;
  if (whole.length === 0 && frac.length === 0) return undefined;
  let exp10 = -frac.length;
  let exp1024 = 0;
  if (suffix in BINARY) {
    exp1024 = BINARY[suffix];
  } else if (suffix in DECIMAL) {
    exp10 += DECIMAL[suffix];
  } else {
    const e = /^[eE]([+-]?[0-9]+)$/.exec(suffix);
    if (!e) return undefined;
    exp10 += Number.parseInt(e[1], 10);
  }
  const digits = (whole + frac).replace(/^0+(?=\d)/, "");
  return { negative: sign === "-", digits, exp10, exp1024 };
}

/** True when s is a well-formed quantity (the syntax resource.ParseQuantity accepts). */
export function isValidQuantity(s: unknown): boolean {
  return (typeof s === "string" || typeof s === "number") && parse(s) !== undefined;
}

/**
 * The value of a quantity in base units as a float: "100m" → 0.1, "1Ki" → 1024, "1e3" → 1000.
 * Throws Error (with Kubernetes' message) when the quantity does not parse.
 */
export function parseQuantity(s: string | number): number {
  const q = parse(s);
  if (!q) throw new Error(QUANTITY_FORMAT_ERROR);
  const v = Number(`${q.digits}e${q.exp10}`) * 1024 ** q.exp1024;
  return q.negative ? -v : v;
}

/**
 * The value in milli-units as an integer, rounded up as Quantity.MilliValue does: "100m" → 100,
 * "0.5" → 500, "1" → 1000, "1n" → 1. Computed exactly (BigInt), so "0.1" gives 100, not 101.
 * Throws Error when the quantity does not parse.
 */
export function parseQuantityMilli(s: string | number): number {
  const q = parse(s);
  if (!q) throw new Error(QUANTITY_FORMAT_ERROR);
  const exp = q.exp10 + 3;
  let num = BigInt(q.digits) * 1024n ** BigInt(q.exp1024);
  let den = 1n;
  if (exp >= 0) num *= 10n ** BigInt(exp);
  else den = 10n ** BigInt(-exp);
  let v = num / den;
  if (q.negative) return -Number(v);
  if (v * den !== num) v += 1n;
  return Number(v);
}

/** The integer value in base units, rounded up (Quantity.Value): "1.5" → 2, "100m" → 1. */
export function parseQuantityValue(s: string | number): number {
  const milli = parseQuantityMilli(s);
  return Math.ceil(milli / 1000);
}
