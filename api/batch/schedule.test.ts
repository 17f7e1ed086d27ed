// CronJob schedules: robfig/cron's ParseStandard acceptance and messages, next times in a time zone.

import { describe, expect, it } from "vitest";
import { formatRFC3339In, parseSchedule } from "./schedule.ts";

const T0 = Date.UTC(2024, 0, 1, 0, 0, 30);
const iso = (ms: number | undefined) => (ms === undefined ? "none" : new Date(ms).toISOString());

describe("parseSchedule", () => {
  it.each([
    ["x", "expected exactly 5 fields, found 1: [x]"],
    ["* * * *", "expected exactly 5 fields, found 4: [* * * *]"],
    ["0 0 * * * *", "expected exactly 5 fields, found 6: [0 0 * * * *]"],
    ["60 * * * *", "end of range (60) above maximum (59): 60"],
    ["* * 0 * *", "beginning of range (0) below minimum (1): 0"],
    ["* * * * 7", "end of range (7) above maximum (6): 7"],
    ["5-2 * * * *", "beginning of range (5) beyond end of range (2): 5-2"],
    ["*/0 * * * *", "step of range should be a positive number: */0"],
    ["1-2-3 * * * *", "too many hyphens: 1-2-3"],
    ["0 0 L * *", 'failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax'],
    ["@fortnightly", "unrecognized descriptor: @fortnightly"],
    ["@every 5x", 'failed to parse duration @every 5x: time: unknown unit "x" in duration "5x"'],
  ])("%s is refused: %s", (s, msg) => {
    expect(() => parseSchedule(s)).toThrow(msg);
  });

  it("accepts names, lists, ranges and steps as robfig/cron does, the day-of-month/day-of-week OR included", () => {
    expect(iso(parseSchedule("*/15 * * * *", "UTC").next(T0))).toBe("2024-01-01T00:15:00.000Z");
    expect(iso(parseSchedule("5/20 * * * *", "UTC").next(T0))).toBe("2024-01-01T00:05:00.000Z");
    expect(iso(parseSchedule("0 0 * JAN-MAR mon", "UTC").next(T0))).toBe("2024-01-08T00:00:00.000Z");
    expect(iso(parseSchedule("0 0 15 * MON", "UTC").next(T0))).toBe("2024-01-08T00:00:00.000Z");
    expect(iso(parseSchedule("0 12 * * ?", "UTC").next(T0))).toBe("2024-01-01T12:00:00.000Z");
  });

  it("next times are strictly after the given time, at whole seconds", () => {
    const s = parseSchedule("* * * * *", "UTC");
    expect(iso(s.next(Date.UTC(2024, 0, 1, 0, 1, 0)))).toBe("2024-01-01T00:02:00.000Z");
    expect(iso(s.next(Date.UTC(2024, 0, 1, 0, 0, 59, 500)))).toBe("2024-01-01T00:01:00.000Z");
  });

  it("@every runs at a constant delay from the given time", () => {
    expect(iso(parseSchedule("@every 1m30s").next(T0))).toBe("2024-01-01T00:02:00.000Z");
  });

  it("a schedule in a time zone, and its RFC 3339 rendering", () => {
    const s = parseSchedule("0 9 * * *", "America/New_York");
    expect(iso(s.next(T0))).toBe("2024-01-01T14:00:00.000Z");
    expect(formatRFC3339In(Date.UTC(2024, 0, 1, 14, 0, 0), "America/New_York")).toBe("2024-01-01T09:00:00-05:00");
    expect(formatRFC3339In(Date.UTC(2024, 0, 1, 14, 0, 0), undefined)).toBe("2024-01-01T14:00:00Z");
  });

  it("a schedule that can never fire (31 February) has no next time", () => {
    expect(parseSchedule("0 0 31 2 *", "UTC").next(T0)).toBeUndefined();
  });
});
