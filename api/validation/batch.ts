// Validation of batch/v1 CronJobs (upstream's ValidateCronJobCreate / ValidateCronJobUpdate).

import { isValidTimeZone, parseSchedule } from "../batch/schedule.ts";
import type { FieldError } from "./field.ts";
import { child, invalid, notSupported, required } from "./field.ts";
import { validateAnnotations, validateLabels, validateNonnegative } from "./meta.ts";
import { validateJob } from "./apps.ts";
import { isRec, rec, str, type Rec } from "./util.ts";

/** The controller appends `-<minutes since epoch>` (11 characters) and Job names are DNS-1035 labels (63). */
const MaxCronJobNameLength = 63 - 11;

/** IANA's naming rules for a component of a zone name (plus digits and '+', for legacy names). */
const VALID_TIME_ZONE_CHARACTERS = /^[A-Za-z.\-_0-9+]{1,14}$/;

function validateScheduleFormat(schedule: string, allowTZInSchedule: boolean, timeZone: unknown, fldPath: string): FieldError[] {
  const errs: FieldError[] = [];
  try {
    parseSchedule(schedule, typeof timeZone === "string" && isValidTimeZone(timeZone) ? timeZone : undefined);
  } catch (e) {
    errs.push(invalid(fldPath, schedule, (e as Error).message));
  }
  if (allowTZInSchedule && schedule.includes("TZ") && timeZone !== undefined && timeZone !== null) {
    errs.push(invalid(fldPath, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"));
  } else if (!allowTZInSchedule && schedule.includes("TZ")) {
    errs.push(invalid(fldPath, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
  }
  return errs;
}

function validateTimeZone(timeZone: unknown, fldPath: string): FieldError[] {
  if (timeZone === undefined || timeZone === null) return [];
  if (typeof timeZone !== "string") return [invalid(fldPath, timeZone, "must be a string")];
  if (timeZone.length === 0) return [invalid(fldPath, timeZone, "timeZone must be nil or non-empty string")];
  for (const part of timeZone.split("/")) {
    if (part === "." || part === ".." || part.startsWith("-") || !VALID_TIME_ZONE_CHARACTERS.test(part)) {
      return [invalid(fldPath, timeZone, `unknown time zone ${timeZone}`)];
    }
  }
  const errs: FieldError[] = [];
  if (timeZone.toLowerCase() === "local") {
    errs.push(invalid(fldPath, timeZone, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"));
  } else if (!isValidTimeZone(timeZone)) {
    errs.push(invalid(fldPath, timeZone, `unknown time zone ${timeZone}`));
  }
  return errs;
}

/** ValidateJobTemplateSpec: the Job spec as a Job's, with a selector the controller generates. */
function validateJobTemplateSpec(template: unknown, fldPath: string): FieldError[] {
  const t = rec(template);
  const specPath = child(fldPath, "spec");
  const errs: FieldError[] = [];
  const meta = rec(t.metadata);
  errs.push(...validateLabels(meta.labels, child(fldPath, "metadata", "labels")));
  errs.push(...validateAnnotations(meta.annotations, child(fldPath, "metadata", "annotations")));
  // Upstream's validateJobSpec without ValidateJobSpec's "selector required": the controller's Jobs get one generated.
  const selectorPath = child(specPath, "selector");
  errs.push(...validateJob({ spec: t.spec }, specPath).filter((e) => !(e.type === "FieldValueRequired" && e.field === selectorPath)));
  const spec = rec(t.spec);
  if (spec.selector !== undefined && spec.selector !== null) {
    errs.push(invalid(child(specPath, "selector"), spec.selector, "`selector` will be auto-generated"));
  }
  if (spec.manualSelector === true) {
    errs.push(notSupported(child(specPath, "manualSelector"), true, ["nil", "false"]));
  }
  return errs;
}

function validateCronJobSpec(spec: unknown, fldPath: string): FieldError[] {
  if (!isRec(spec)) return [required(fldPath, "")];
  const errs: FieldError[] = [];
  const schedule = str(spec.schedule);
  if (schedule.length === 0) {
    errs.push(required(child(fldPath, "schedule"), ""));
  } else {
    errs.push(...validateScheduleFormat(schedule, false, spec.timeZone, child(fldPath, "schedule")));
  }
  errs.push(...validateNonnegative(spec.startingDeadlineSeconds, child(fldPath, "startingDeadlineSeconds")));
  errs.push(...validateTimeZone(spec.timeZone, child(fldPath, "timeZone")));
  const policy = spec.concurrencyPolicy;
  if (policy === undefined || policy === null || policy === "") errs.push(required(child(fldPath, "concurrencyPolicy"), ""));
  else if (policy !== "Allow" && policy !== "Forbid" && policy !== "Replace") {
    errs.push(notSupported(child(fldPath, "concurrencyPolicy"), policy, ["Allow", "Forbid", "Replace"]));
  }
  if (!isRec(spec.jobTemplate)) errs.push(required(child(fldPath, "jobTemplate"), ""));
  else errs.push(...validateJobTemplateSpec(spec.jobTemplate, child(fldPath, "jobTemplate")));
  errs.push(...validateNonnegative(spec.successfulJobsHistoryLimit, child(fldPath, "successfulJobsHistoryLimit")));
  errs.push(...validateNonnegative(spec.failedJobsHistoryLimit, child(fldPath, "failedJobsHistoryLimit")));
  return errs;
}

/**
 * ValidateCronJobCreate (metadata is validated by the caller): a name short enough for its Jobs'
 * names, and the spec. Updates get the same rules: upstream's update-only leniency (a `TZ=` schedule
 * stored before the timeZone field existed) cannot arise here, since no such object is ever stored.
 */
export function validateCronJob(o: Rec): FieldError[] {
  const errs: FieldError[] = [];
  const name = str(rec(o.metadata).name);
  if (name.length > MaxCronJobNameLength) errs.push(invalid(child("metadata", "name"), name, `must be no more than ${MaxCronJobNameLength} characters`));
  errs.push(...validateCronJobSpec(o.spec, "spec"));
  return errs;
}
