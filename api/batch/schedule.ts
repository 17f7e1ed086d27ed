// CronJob schedules: upstream's parser rules (robfig/cron's ParseStandard: five fields, the
// @yearly … @hourly descriptors and @every <duration>, its error messages word for word), with the
// next activation times computed by cron-parser in the CronJob's time zone.

import { CronExpressionParser, type CronExpression } from "cron-parser";

interface Bounds {
  min: number;
  max: number;
  names?: Record<string, number>;
}

const MONTH_NAMES: Record<string, number> = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 };
const DOW_NAMES: Record<string, number> = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };

/** minute, hour, day of month, month, day of week, as robfig/cron bounds them. */
const FIELDS: Bounds[] = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: MONTH_NAMES },
  { min: 0, max: 6, names: DOW_NAMES },
];

const DESCRIPTORS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/** A schedule error carrying robfig/cron's message (validation puts it after `Invalid value: "...":`). */
export class ScheduleError extends Error {
  override readonly name = "ScheduleError";
}

/** strconv.Atoi with Go's error text. */
function atoi(expr: string): number {
  if (!/^[+-]?[0-9]+$/.test(expr)) throw new ScheduleError(`failed to parse int from ${expr}: strconv.Atoi: parsing ${JSON.stringify(expr)}: invalid syntax`);
  const n = Number.parseInt(expr, 10);
  if (!Number.isSafeInteger(n) || Math.abs(n) > 2 ** 63 - 1) {
    throw new ScheduleError(`failed to parse int from ${expr}: strconv.Atoi: parsing ${JSON.stringify(expr)}: value out of range`);
  }
  return n;
}

function mustParseInt(expr: string): number {
  const n = atoi(expr);
  if (n < 0) throw new ScheduleError(`negative number (${n}) not allowed: ${expr}`);
  return n;
}

function parseIntOrName(expr: string, names: Record<string, number> | undefined): number {
  const named = names?.[expr.toLowerCase()];
  return named !== undefined ? named : mustParseInt(expr);
}

/** One comma-separated part of a field (getRange): the values it selects, and whether it is `*`. */
function getRange(expr: string, r: Bounds): { values: number[]; star: boolean } {
  const rangeAndStep = expr.split("/");
  const lowAndHigh = rangeAndStep[0]!.split("-");
  const singleDigit = lowAndHigh.length === 1;
  let start: number;
  let end: number;
  let star = false;
  if (lowAndHigh[0] === "*" || lowAndHigh[0] === "?") {
    start = r.min;
    end = r.max;
    star = true;
  } else {
    start = parseIntOrName(lowAndHigh[0]!, r.names);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1]!, r.names);
    else throw new ScheduleError(`too many hyphens: ${expr}`);
  }
  let step: number;
  if (rangeAndStep.length === 1) step = 1;
  else if (rangeAndStep.length === 2) {
    step = mustParseInt(rangeAndStep[1]!);
    // "N/step" means "N-max/step".
    if (singleDigit) end = r.max;
    if (step > 1) star = false;
  } else throw new ScheduleError(`too many slashes: ${expr}`);
  if (start < r.min) throw new ScheduleError(`beginning of range (${start}) below minimum (${r.min}): ${expr}`);
  if (end > r.max) throw new ScheduleError(`end of range (${end}) above maximum (${r.max}): ${expr}`);
  if (start > end) throw new ScheduleError(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0) throw new ScheduleError(`step of range should be a positive number: ${expr}`);
  const values: number[] = [];
  for (let v = start; v <= end; v += step) values.push(v);
  return { values, star };
}

/** A field in the canonical form handed to cron-parser: `*` where robfig sees a star, else the explicit values. */
function canonicalField(field: string, r: Bounds): string {
  let star = false;
  const values = new Set<number>();
  for (const part of field.split(",").filter((p) => p !== "")) {
    const g = getRange(part, r);
    star ||= g.star;
    for (const v of g.values) values.add(v);
  }
  if (star) return "*";
  return [...values].sort((a, b) => a - b).join(",");
}

/** Go's time.ParseDuration, for `@every`. Returns milliseconds (sub-millisecond parts are dropped). */
export function parseGoDuration(s: string): number {
  const orig = s;
  const bad = (): never => {
    throw new ScheduleError(`time: invalid duration ${JSON.stringify(orig)}`);
  };
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") bad();
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  while (s !== "") {
    const m = /^([0-9]*(?:\.[0-9]*)?)([a-zµμ]*)/.exec(s);
    if (!m || m[1] === "" || m[1] === ".") bad();
    const unit = m![2]!;
    if (unit === "") throw new ScheduleError(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const mult = units[unit];
    if (mult === undefined) throw new ScheduleError(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(orig)}`);
    total += Number.parseFloat(m![1]!) * mult;
    s = s.slice(m![0].length);
  }
  return sign * total;
}

/** A parsed schedule: the next activation strictly after a time (robfig's Schedule.Next). */
export interface Schedule {
  /** The first activation after `afterMs` (whole seconds), or undefined when there is none. */
  next(afterMs: number): number | undefined;
}

/** `@every <duration>`: robfig's ConstantDelaySchedule (at least one second, whole seconds). */
class ConstantDelaySchedule implements Schedule {
  constructor(private readonly delayMs: number) {}
  next(afterMs: number): number {
    return Math.floor(afterMs / 1000) * 1000 + this.delayMs;
  }
}

class CronSchedule implements Schedule {
  private readonly expr: CronExpression;
  constructor(canonical: string, tz: string | undefined) {
    this.expr = CronExpressionParser.parse(canonical, { currentDate: new Date(0), ...(tz ? { tz } : {}) });
  }
  next(afterMs: number): number | undefined {
    // robfig rounds up to the next whole second first; cron-parser returns the first match after it.
    this.expr.reset(new Date(Math.floor(afterMs / 1000) * 1000));
    try {
      return this.expr.next().getTime();
    } catch {
      return undefined;
    }
  }
}

/**
 * Parses a CronJob schedule as upstream's cron.ParseStandard does: a leading `TZ=zone` or
 * `CRON_TZ=zone` (which validation forbids in new CronJobs), a descriptor, or exactly five fields.
 * `timeZone` (an IANA name) applies when the schedule carries none; unset means local time.
 * Throws ScheduleError with robfig/cron's message.
 */
export function parseSchedule(spec: string, timeZone?: string): Schedule {
  if (spec.length === 0) throw new ScheduleError("empty spec string");
  let tz = timeZone;
  if (spec.startsWith("TZ=") || spec.startsWith("CRON_TZ=")) {
    const i = spec.indexOf(" ");
    const eq = spec.indexOf("=");
    const name = i < 0 ? spec.slice(eq + 1) : spec.slice(eq + 1, i);
    if (!isValidTimeZone(name)) throw new ScheduleError(`provided bad location ${name}: unknown time zone ${name}`);
    tz = name;
    spec = i < 0 ? "" : spec.slice(i).trim();
  }
  if (spec.startsWith("@")) {
    if (spec.startsWith("@every ")) {
      const d = spec.slice("@every ".length);
      let ms: number;
      try {
        ms = parseGoDuration(d);
      } catch (e) {
        throw new ScheduleError(`failed to parse duration ${spec}: ${(e as Error).message}`);
      }
      return new ConstantDelaySchedule(Math.max(1000, Math.floor(ms / 1000) * 1000));
    }
    const expanded = DESCRIPTORS[spec];
    if (expanded === undefined) throw new ScheduleError(`unrecognized descriptor: ${spec}`);
    return new CronSchedule(expanded, tz);
  }
  const fields = spec.split(/\s+/).filter((f) => f !== "");
  if (fields.length !== 5) throw new ScheduleError(`expected exactly 5 fields, found ${fields.length}: [${fields.join(" ")}]`);
  const canonical = fields.map((f, i) => canonicalField(f, FIELDS[i]!)).join(" ");
  try {
    return new CronSchedule(canonical, tz);
  } catch (e) {
    // Fields robfig accepts but that can never match (e.g. 31 February) have no activation.
    if (e instanceof ScheduleError) throw e;
    return { next: () => undefined };
  }
}

/** True when `name` is an IANA time zone this runtime knows (Go's time.LoadLocation succeeding). */
export function isValidTimeZone(name: string): boolean {
  if (name === "" || name === "UTC") return true;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** `ms` as RFC 3339 in `timeZone` (unset: UTC), as Go's Time.In(loc).Format(time.RFC3339): "2024-01-01T02:00:00-05:00". */
export function formatRFC3339In(ms: number, timeZone: string | undefined): string {
  const whole = Math.floor(ms / 1000) * 1000;
  if (!timeZone || timeZone === "UTC") return new Date(whole).toISOString().replace(/\.\d{3}Z$/, "Z");
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(whole));
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? "00";
  const local = `${get("year")}-${get("month")}-${get("day")}T${get("hour")}:${get("minute")}:${get("second")}`;
  const offsetMin = Math.round((Date.parse(`${local}Z`) - whole) / 60_000);
  if (offsetMin === 0) return `${local}Z`;
  const sign = offsetMin < 0 ? "-" : "+";
  const abs = Math.abs(offsetMin);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}
