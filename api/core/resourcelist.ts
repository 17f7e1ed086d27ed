// Exact resource.Quantity arithmetic and the ResourceList helpers quota and LimitRanger use
// (k8s.io/apiserver/pkg/quota/v1 resources.go: Add, Subtract, Mask, LessThanOrEqual, ...), with
// Quantity.String()'s canonical form, so messages print "500m", "1536Mi" and "2k" as upstream does.

import { QUANTITY_FORMAT_ERROR, type ResourceList } from "../quantity.ts";

/** resource.Format: how a quantity prints. Binary suffixes (Ki, Mi…) parse as BinarySI, e3 as DecimalExponent. */
export type QuantityFormat = "DecimalSI" | "BinarySI" | "DecimalExponent";

const NANO = 1_000_000_000n;
const BINARY: Record<string, number> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const DECIMAL_SUFFIX: Record<number, string> = { [-9]: "n", [-6]: "u", [-3]: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E" };
const BINARY_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/**
 * An exact quantity: an integer number of nano-units (the finest precision Kubernetes keeps; finer
 * input is rounded up, as ParseQuantity does) and the format it prints in. Immutable.
 */
export class ExactQuantity {
  private constructor(
    /** The value in nano-units (1 = 1n, 1e9 = 1). */
    readonly nanos: bigint,
    readonly format: QuantityFormat,
  ) {}

  static fromNanos(nanos: bigint, format: QuantityFormat = "DecimalSI"): ExactQuantity {
    return new ExactQuantity(nanos, format);
  }

  /** resource.NewQuantity(n, DecimalSI). */
  static ofInt(n: number | bigint, format: QuantityFormat = "DecimalSI"): ExactQuantity {
    return new ExactQuantity(BigInt(n) * NANO, format);
  }

  static zero(format: QuantityFormat = "DecimalSI"): ExactQuantity {
    return new ExactQuantity(0n, format);
  }

  /** resource.ParseQuantity. Throws Error with Kubernetes' message when the text is not a quantity. */
  static parse(input: string | number): ExactQuantity {
    const q = ExactQuantity.tryParse(input);
    if (!q) throw new Error(QUANTITY_FORMAT_ERROR);
    return q;
  }

  static tryParse(input: unknown): ExactQuantity | undefined {
    let s: string;
    if (typeof input === "number") {
      if (!Number.isFinite(input)) return undefined;
      s = String(input);
    } else if (typeof input === "string") s = input.trim();
    else return undefined;
    const m = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)$/.exec(s);
    if (!m) return undefined;
    const [, sign, whole, frac = "", suffix] = m;
    if (whole.length === 0 && frac.length === 0) return undefined;
    let exp10 = -frac.length;
    let exp1024 = 0;
    let format: QuantityFormat = "DecimalSI";
    if (suffix in BINARY) {
      exp1024 = BINARY[suffix]!;
      format = "BinarySI";
    } else if (suffix in DECIMAL) {
      exp10 += DECIMAL[suffix]!;
    } else {
      const e = /^[eE]([+-]?[0-9]+)$/.exec(suffix);
      if (!e) return undefined;
      exp10 += Number.parseInt(e[1]!, 10);
      format = "DecimalExponent";
    }
    let num = BigInt(whole + frac || "0") * 1024n ** BigInt(exp1024);
    // To nano-units: multiply by 10^(exp10 + 9), rounding a finer remainder up (away from zero).
    const shift = exp10 + 9;
    if (shift >= 0) num *= pow10(shift);
    else {
      const den = pow10(-shift);
      const q = num / den;
      num = q * den === num ? q : q + 1n;
    }
    return new ExactQuantity(sign === "-" ? -num : num, format);
  }

  isZero(): boolean {
    return this.nanos === 0n;
  }

  sign(): -1 | 0 | 1 {
    return this.nanos === 0n ? 0 : this.nanos < 0n ? -1 : 1;
  }

  cmp(o: ExactQuantity): -1 | 0 | 1 {
    return this.nanos === o.nanos ? 0 : this.nanos < o.nanos ? -1 : 1;
  }

  /** Quantity.Add: the receiver's format, unless it is zero (then the other's). */
  add(o: ExactQuantity): ExactQuantity {
    return new ExactQuantity(this.nanos + o.nanos, this.nanos === 0n ? o.format : this.format);
  }

  sub(o: ExactQuantity): ExactQuantity {
    return new ExactQuantity(this.nanos - o.nanos, this.nanos === 0n ? o.format : this.format);
  }

  neg(): ExactQuantity {
    return new ExactQuantity(-this.nanos, this.format);
  }

  /** Quantity.MilliValue: rounded up. */
  milliValue(): bigint {
    return ceilDiv(this.nanos, 1_000_000n);
  }

  /** Quantity.Value: rounded up. */
  value(): bigint {
    return ceilDiv(this.nanos, NANO);
  }

  /** A float approximation in base units (for ratios). */
  toNumber(): number {
    return Number(this.nanos) / 1e9;
  }

  /** Quantity.String(): the canonical form ("500m", "1536Mi", "2k", "1e3"). */
  toString(): string {
    if (this.nanos === 0n) return "0";
    const negative = this.nanos < 0n;
    const abs = negative ? -this.nanos : this.nanos;
    let format = this.format;
    if (format === "BinarySI") {
      // Below 1024 or with a fraction, binary suffixes would round: print as DecimalSI.
      if (abs < 1024n * NANO || abs % NANO !== 0n) format = "DecimalSI";
    }
    let out: string;
    if (format === "BinarySI") {
      let v = abs / NANO;
      let e = 0;
      while (e < BINARY_SUFFIX.length - 1 && v % 1024n === 0n) {
        v /= 1024n;
        e++;
      }
      out = `${v}${BINARY_SUFFIX[e]}`;
    } else {
      // Strip factors of ten, then bring the exponent down to a multiple of three.
      let v = abs;
      let e = -9;
      while (v % 10n === 0n) {
        v /= 10n;
        e++;
      }
      const r = ((e % 3) + 3) % 3;
      if (r !== 0) {
        v *= pow10(r);
        e -= r;
      }
      if (format === "DecimalExponent") out = e === 0 ? `${v}` : `${v}e${e}`;
      else {
        const suffix = DECIMAL_SUFFIX[e];
        out = suffix !== undefined ? `${v}${suffix}` : `${v}e${e}`;
      }
    }
    return negative ? `-${out}` : out;
  }
}

function ceilDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  return q * d !== n && n > 0n ? q + 1n : q;
}

/** A ResourceList of parsed quantities. */
export type Quantities = Map<string, ExactQuantity>;

/** Parses a JSON ResourceList; entries that are not quantities are skipped (validation reports them). */
export function toQuantities(list: unknown): Quantities {
  const out: Quantities = new Map();
  if (typeof list !== "object" || list === null || Array.isArray(list)) return out;
  for (const [k, v] of Object.entries(list as Record<string, unknown>)) {
    const q = ExactQuantity.tryParse(v);
    if (q) out.set(k, q);
  }
  return out;
}

/** The JSON form, keys sorted (as Go's encoder writes maps), values canonical. */
export function fromQuantities(q: Quantities): ResourceList {
  const out: ResourceList = {};
  for (const k of [...q.keys()].sort()) out[k] = q.get(k)!.toString();
  return out;
}

/** quota.Add: every key of either, summed where both have it. */
export function addQuantities(a: Quantities, b: Quantities): Quantities {
  const out: Quantities = new Map();
  for (const [k, v] of a) {
    const o = b.get(k);
    out.set(k, o ? v.add(o) : v);
  }
  for (const [k, v] of b) if (!out.has(k)) out.set(k, v);
  return out;
}

/** quota.Subtract: a − b for every key of either (b's own keys negated). */
export function subtractQuantities(a: Quantities, b: Quantities): Quantities {
  const out: Quantities = new Map();
  for (const [k, v] of a) {
    const o = b.get(k);
    out.set(k, o ? v.sub(o) : v);
  }
  for (const [k, v] of b) if (!out.has(k)) out.set(k, v.neg());
  return out;
}

/** quota.SubtractWithNonNegativeResult: like Subtract, negative results become zero. */
export function subtractNonNegative(a: Quantities, b: Quantities): Quantities {
  const out: Quantities = new Map();
  for (const [k, v] of subtractQuantities(a, b)) out.set(k, v.sign() < 0 ? ExactQuantity.zero(v.format) : v);
  return out;
}

/** quota.Mask: only the named keys. */
export function maskQuantities(a: Quantities, names: Iterable<string>): Quantities {
  const out: Quantities = new Map();
  for (const n of names) {
    const v = a.get(n);
    if (v) out.set(n, v);
  }
  return out;
}

/** quota.LessThanOrEqual: for each key of a also in b, a ≤ b; the keys where not, sorted. */
export function lessThanOrEqual(a: Quantities, b: Quantities): { ok: boolean; exceeded: string[] } {
  const exceeded: string[] = [];
  for (const [k, v] of a) {
    const o = b.get(k);
    if (o && v.cmp(o) > 0) exceeded.push(k);
  }
  exceeded.sort();
  return { ok: exceeded.length === 0, exceeded };
}

/** quota.Equals: the same keys with equal values. */
export function equalQuantities(a: Quantities, b: Quantities): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const o = b.get(k);
    if (!o || o.cmp(v) !== 0) return false;
  }
  return true;
}

/** quota.IsNegative: the keys with a negative value. */
export function negativeKeys(a: Quantities): string[] {
  return [...a].filter(([, v]) => v.sign() < 0).map(([k]) => k);
}

/** quota.RemoveZeros. */
export function removeZeros(a: Quantities): Quantities {
  return new Map([...a].filter(([, v]) => !v.isZero()));
}

/** quota.ToSet(ResourceNames(a)) as a sorted list. */
export function resourceNames(a: Quantities | ResourceList | undefined): string[] {
  if (!a) return [];
  return (a instanceof Map ? [...a.keys()] : Object.keys(a)).sort();
}

/** prettyPrint in the quota admission: `a=1,b=2Gi`, keys sorted. */
export function prettyPrintQuantities(a: Quantities): string {
  return [...a.keys()]
    .sort()
    .map((k) => `${k}=${a.get(k)!.toString()}`)
    .join(",");
}
