// Field errors shaped and printed like k8s.io/apimachinery/pkg/util/validation/field.

export type FieldErrorType =
  | "FieldValueRequired"
  | "FieldValueInvalid"
  | "FieldValueDuplicate"
  | "FieldValueNotSupported"
  | "FieldValueForbidden"
  | "FieldValueTooLong"
  | "FieldValueTooMany"
  | "FieldValueTypeInvalid"
  | "FieldValueNotFound";

/**
 * One validation failure. `type` doubles as the StatusCause reason of a 422 response; `field` is
 * the path ("spec.containers[0].name"); `badValue` is printed by formatFieldError for the types
 * that show the value (Invalid, Duplicate, NotSupported, NotFound, TooMany).
 */
export interface FieldError {
  type: FieldErrorType;
  field: string;
  badValue?: unknown;
  detail: string;
}

const TYPE_TEXT: Record<FieldErrorType, string> = {
  FieldValueRequired: "Required value",
  FieldValueInvalid: "Invalid value",
  FieldValueDuplicate: "Duplicate value",
  FieldValueNotSupported: "Unsupported value",
  FieldValueForbidden: "Forbidden",
  FieldValueTooLong: "Too long",
  FieldValueTooMany: "Too many",
  FieldValueTypeInvalid: "Invalid value",
  FieldValueNotFound: "Not found",
};

/** Types whose message never shows the bad value (field.Error.ErrorBody). */
const NO_VALUE: ReadonlySet<FieldErrorType> = new Set(["FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong"]);

/** Go's strconv.Quote (what %q prints) for the strings found in API objects. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case "\\":
        out += "\\\\";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\x07":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\v":
        out += "\\v";
        continue;
    }
    if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (c >= 0x80 && c < 0xa0) out += `\\u${c.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out + '"';
}

/** How Go's %#v-ish fallback renders a bad value that is not a string, number or bool. */
function renderValue(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return goQuote(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) {
    return `[]string{${v.map((x: string) => goQuote(x)).join(", ")}}`;
  }
  if (typeof v === "object" && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length > 0 && entries.every(([, x]) => typeof x === "string")) {
      // Go prints maps with sorted keys.
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `map[string]string{${entries.map(([k, x]) => `${goQuote(k)}:${goQuote(x as string)}`).join(", ")}}`;
    }
  }
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/**
 * The error text Kubernetes prints for a field error, e.g.
 * `spec.containers[1].name: Duplicate value: "a"` or `spec.containers: Required value`.
 */
export function formatFieldError(e: FieldError): string {
  let body = TYPE_TEXT[e.type];
  if (!NO_VALUE.has(e.type)) body += `: ${renderValue(e.badValue)}`;
  if (e.detail) body += `: ${e.detail}`;
  return `${e.field}: ${body}`;
}

/** All errors joined as an aggregate prints them: one error alone, several in brackets. */
export function formatFieldErrors(errs: readonly FieldError[]): string {
  if (errs.length === 1) return formatFieldError(errs[0]);
  return `[${errs.map(formatFieldError).join(", ")}]`;
}

// ---------------------------------------------------------------------------------------------
// Constructors, named as field.Required, field.Invalid, ... are.

export function required(field: string, detail = ""): FieldError {
  return { type: "FieldValueRequired", field, badValue: "", detail };
}

export function invalid(field: string, value: unknown, detail: string): FieldError {
  return { type: "FieldValueInvalid", field, badValue: value, detail };
}

export function duplicate(field: string, value: unknown): FieldError {
  return { type: "FieldValueDuplicate", field, badValue: value, detail: "" };
}

export function notFound(field: string, value: unknown): FieldError {
  return { type: "FieldValueNotFound", field, badValue: value, detail: "" };
}

/** field.NotSupported: detail lists the valid values quoted, in the order given. */
export function notSupported(field: string, value: unknown, validValues: readonly string[]): FieldError {
  const detail = validValues.length ? `supported values: ${validValues.map(goQuote).join(", ")}` : "";
  return { type: "FieldValueNotSupported", field, badValue: value, detail };
}

export function forbidden(field: string, detail: string): FieldError {
  return { type: "FieldValueForbidden", field, badValue: "", detail };
}

/** field.TooLong: maxLength in bytes (characters for names). */
export function tooLong(field: string, value: unknown, maxLength: number): FieldError {
  const detail = maxLength >= 0 ? `may not be more than ${maxLength} ${maxLength === 1 ? "byte" : "bytes"}` : "value is too long";
  return { type: "FieldValueTooLong", field, badValue: value, detail };
}

export function tooMany(field: string, actual: number, max: number): FieldError {
  const detail = max >= 0 ? `must have at most ${max} items` : "has too many items";
  return { type: "FieldValueTooMany", field, badValue: actual, detail };
}

export function typeInvalid(field: string, value: unknown, detail: string): FieldError {
  return { type: "FieldValueTypeInvalid", field, badValue: value, detail };
}

// ---------------------------------------------------------------------------------------------
// Paths, as field.Path prints them: children joined by ".", indexes and keys in brackets.

export function child(base: string, ...names: string[]): string {
  let p = base;
  for (const n of names) p = p ? `${p}.${n}` : n;
  return p;
}

export function index(base: string, i: number): string {
  return `${base}[${i}]`;
}

export function key(base: string, k: string): string {
  return `${base}[${k}]`;
}
