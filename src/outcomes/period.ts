// The period and stratifiers an outcome report is asked for, read the same way by the plain
// endpoint and by $evaluate-measure; a bad value answers 400 naming the parameter.
import { badRequest } from '../base/outcome.js';
import { stratifiers, type Stratifier } from './strata.js';

const fhirDate = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;

/** A FHIR date (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) as the first (or, for an end, the last) day it covers. */
export function periodDate(value: string, parameter: string, end: boolean): string {
  const match = fhirDate.exec(value);
  const [year, month, day] = [Number(match?.[1]), match?.[2] ? Number(match[2]) : undefined, match?.[3] ? Number(match[3]) : undefined];
  // Day 0 of the next month is the last day of this one.
  const date = !end || day ? new Date(Date.UTC(year, (month ?? 1) - 1, day ?? 1)) : new Date(Date.UTC(year, month ?? 12, 0));
  if (!match || (month !== undefined && (month < 1 || month > 12)) || (day !== undefined && date.getUTCDate() !== day)) {
    throw badRequest(`${parameter} must be a date (YYYY, YYYY-MM or YYYY-MM-DD), got "${value.slice(0, 40)}"`, parameter);
  }
  return date.toISOString().slice(0, 10);
}

/** periodStart..periodEnd, defaulting to twelve months: the end's month and the eleven before it; 400 when the start is after the end. */
export function period(
  start: string | undefined,
  end: string | undefined,
  startName: string,
  endName: string,
  now = new Date(),
): { periodStart: string; periodEnd: string } {
  const periodEnd = end === undefined ? now.toISOString().slice(0, 10) : periodDate(end, endName, true);
  const periodStart =
    start === undefined
      ? new Date(Date.UTC(Number(periodEnd.slice(0, 4)), Number(periodEnd.slice(5, 7)) - 12, 1)).toISOString().slice(0, 10)
      : periodDate(start, startName, false);
  if (periodStart > periodEnd) throw badRequest(`${startName} (${periodStart}) is after ${endName} (${periodEnd})`, startName);
  return { periodStart, periodEnd };
}

/** Stratifier names, each one of `allowed` (all of them when none is named). */
export function stratifierList(names: string[], parameter: string, allowed: readonly string[] = stratifiers): Stratifier[] {
  const unknown = names.find((n) => !allowed.includes(n));
  if (unknown !== undefined) throw badRequest(`${parameter} takes ${allowed.join(', ')}; "${unknown.slice(0, 40)}" is not one of them`, parameter);
  return (names.length ? [...new Set(names)] : [...allowed]) as Stratifier[];
}
