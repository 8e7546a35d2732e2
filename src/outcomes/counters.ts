// What one case adds to the outcome counters, and what changes when its facts change. Counters are
// documents per (month, stratifier, value), so a report adds up a few thousand small documents
// whatever the number of cases. Cases still waiting are not counted here: they are a set, one small
// document per waiting case (ledger.ts), which stays as small as the work in progress.
// A case's contribution is a function of its facts alone: a change of facts (a delivery, an amended
// concordance) is the difference of two contributions, which moves counts rather than adding them.
import type { CaseStrata } from './strata.js';

/** What the counters need to know of a case; kept in the case's own outcome document. */
export interface CaseFacts {
  strata: CaseStrata;
  /** When the case was opened (its Task created), `YYYY-MM`. */
  openedMonth: string;
  /** While the case waits for an opinion: when it is due, to the minute (`YYYY-MM-DDTHH:MM`), or `none`. */
  waiting?: { due: string };
  /** Once its opinion has been delivered (the first time). */
  delivered?: {
    month: string;
    /** From opening to the first delivery. */
    seconds: number;
    /** Its turnaround histogram bucket (figures.ts), kept for queries over the cases themselves. */
    bucket: number;
    /** The concordance of the current final or amended opinion. */
    concordance?: string;
    /** Requests for information (CommunicationRequests) the case had. */
    questions: number;
  };
}

export interface CounterMeta {
  /** `YYYY-MM`: the month of what is counted (a case opened, an opinion delivered). */
  period: string;
  /** The stratifier, or `all` for the totals. */
  dim: string;
  value: string;
}

export interface CounterDelta {
  key: string;
  meta: CounterMeta;
  inc: Record<string, number>;
}

export const concordanceField = (code: string): string => `concordance_${code}`;
export const bucketField = (bucket: number): string => `t${bucket}`;

/** The counts one case contributes, by counter. */
export function contributions(facts: CaseFacts): Map<string, CounterDelta> {
  const counters = new Map<string, CounterDelta>();
  const add = (meta: CounterMeta, inc: Record<string, number>): void => {
    const key = `m|${meta.period}|${meta.dim}|${meta.value}`;
    const counter = counters.get(key) ?? { key, meta, inc: {} };
    for (const [field, n] of Object.entries(inc)) counter.inc[field] = (counter.inc[field] ?? 0) + n;
    counters.set(key, counter);
  };
  for (const [dim, value] of [['all', 'all'], ...Object.entries(facts.strata)]) {
    add({ period: facts.openedMonth, dim, value }, { opened: 1 });
    const delivered = facts.delivered;
    if (delivered) {
      add(
        { period: delivered.month, dim, value },
        {
          delivered: 1,
          ...(delivered.concordance ? { [concordanceField(delivered.concordance)]: 1 } : {}),
          questions: delivered.questions,
          withQuestions: delivered.questions > 0 ? 1 : 0,
          turnaroundSeconds: delivered.seconds,
          [bucketField(delivered.bucket)]: 1,
        },
      );
    }
  }
  return counters;
}

/** The counter changes that turn the contribution of `before` (none: a new case) into that of `after`. */
export function difference(before: CaseFacts | undefined, after: CaseFacts): CounterDelta[] {
  const old = before ? contributions(before) : new Map<string, CounterDelta>();
  const now = contributions(after);
  const deltas: CounterDelta[] = [];
  for (const key of new Set([...old.keys(), ...now.keys()])) {
    const [was, is] = [old.get(key), now.get(key)];
    const inc: Record<string, number> = {};
    for (const field of new Set([...Object.keys(was?.inc ?? {}), ...Object.keys(is?.inc ?? {})])) {
      const change = (is?.inc[field] ?? 0) - (was?.inc[field] ?? 0);
      if (change !== 0) inc[field] = change;
    }
    if (Object.keys(inc).length) deltas.push({ key, meta: (is ?? was)!.meta, inc });
  }
  return deltas;
}

/** The sum of many cases' contributions (a bulk import applies one delta per counter). */
export function merged(deltas: Iterable<CounterDelta>): CounterDelta[] {
  const byKey = new Map<string, CounterDelta>();
  for (const delta of deltas) {
    const into = byKey.get(delta.key) ?? { key: delta.key, meta: delta.meta, inc: {} };
    for (const [field, n] of Object.entries(delta.inc)) into.inc[field] = (into.inc[field] ?? 0) + n;
    byKey.set(delta.key, into);
  }
  return [...byKey.values()];
}
