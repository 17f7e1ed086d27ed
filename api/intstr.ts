// IntOrString: fields such as maxSurge, targetPort and maxUnavailable take either a number or a string.

/** A number, or a string (a percentage like "25%", or a named port like "http"). */
export type IntOrString = number | string;

/**
 * The integer value of an IntOrString and whether it was a percentage, as intstr's
 * getIntOrPercentValueSafely: a string must end in "%" and hold an integer before it.
 * Throws Error on anything else.
 */
export function intOrPercentValue(v: IntOrString): { value: number; isPercent: boolean } {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`invalid value for IntOrString: ${v} is not an integer`);
    return { value: v, isPercent: false };
  }
  if (typeof v !== "string") throw new Error("invalid value for IntOrString: not a number or string");
  if (!v.endsWith("%")) throw new Error("invalid value for IntOrString: invalid type: string is not a percentage");
  const digits = v.slice(0, -1);
  if (!/^[+-]?\d+$/.test(digits)) {
    throw new Error(`invalid value for IntOrString: invalid value ${JSON.stringify(v)}: not an integer`);
  }
  return { value: Number.parseInt(digits, 10), isPercent: true };
}

/**
 * intstr.GetScaledValueFromIntOrPercent: a plain number is returned as is; "25%" of total is
 * rounded up (roundUp) or down. Deployments round maxSurge up and maxUnavailable down.
 * Throws Error for undefined or a malformed value.
 */
export function scaledValue(intOrPercent: IntOrString | undefined | null, total: number, roundUp: boolean): number {
  if (intOrPercent === undefined || intOrPercent === null) throw new Error("nil value for IntOrString");
  const { value, isPercent } = intOrPercentValue(intOrPercent);
  if (!isPercent) return value;
  // value*total is an exact integer in the ranges used here, so the division rounds correctly.
  const product = value * total;
  return roundUp ? Math.ceil(product / 100) : Math.floor(product / 100);
}

/** True when v has the JSON type of an IntOrString (a number or a string). */
export function isIntOrString(v: unknown): v is IntOrString {
  return typeof v === "number" || typeof v === "string";
}
