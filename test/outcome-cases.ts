// Synthetic case facts for the ledger tests and the benchmark: what the counters would be told of
// a case as it is opened, delivered, and has its opinion amended.
import { turnaroundBucket } from '../src/outcomes/figures.js';
import type { CaseFacts } from '../src/outcomes/counters.js';

export const concordanceCodes = ['concordant', 'minor-discrepancy', 'diagnosis-changed', 'treatment-changed'];

/** Case `i` as opened (waiting), delivered, and amended to another concordance. */
export function caseStory(i: number): CaseFacts[] {
  const strata = { specialty: `s${i % 3}`, institution: `Organization/i${i % 4}`, reason: `C${50 + (i % 5)}.9`, chapter: 'II (C00-D49)' };
  const openedMonth = `2026-0${1 + (i % 3)}`;
  const seconds = 3600 * (1 + (i % 17));
  const opened: CaseFacts = { strata, openedMonth, waiting: { due: `2026-0${1 + (i % 3)}-15T10:00` } };
  const delivered: CaseFacts = {
    strata,
    openedMonth,
    delivered: { month: `2026-0${2 + (i % 3)}`, seconds, bucket: turnaroundBucket(seconds / 60), concordance: concordanceCodes[i % 4], questions: i % 3 },
  };
  const amended: CaseFacts = { ...delivered, delivered: { ...delivered.delivered!, concordance: concordanceCodes[(i + 1) % 4] } };
  return [opened, delivered, amended];
}
