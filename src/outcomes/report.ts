// The outcome report: the counters summed in the database over the months of a period, by
// stratifier value, and turned into figures (shares with Wilson intervals, turnaround percentiles,
// cases waiting and overdue, requests for information per case). What the JSON and CSV endpoint,
// the $evaluate-measure operation and the analytics page show. No patient identifiers: the strata
// are specialties, institutions, diagnosis codes, chapters and months.
import type { OutcomeLedger } from './ledger.js';
import { bucketField, concordanceField } from './counters.js';
import { bucketEdgeHours, percentileHours, shareOf, turnaroundBuckets, type Share } from './figures.js';
import { monthOf, type Stratifier } from './strata.js';

export interface ReportQuery {
  /** `YYYY-MM-DD`; the months from periodStart's to periodEnd's are counted whole. */
  periodStart: string;
  periodEnd: string;
  by: Stratifier[];
}

export interface StratumFigures {
  /** The stratifier, or `all` for the whole. */
  stratifier: Stratifier | 'all';
  value: string;
  /** A name for the value where one is known (an institution's). */
  label?: string;
  /** Cases opened in the period. */
  opened: number;
  /** Cases whose opinion was (first) delivered in the period. */
  delivered: number;
  /** Of those, by the concordance of their current opinion. */
  concordance: Record<string, Share>;
  turnaroundHours: { median: number | null; p90: number | null; p99: number | null; mean: number | null };
  /** Cases opened in the period and still waiting for an opinion, and those of them past due. */
  waiting: number;
  overdue: number;
  informationRequests: { total: number; perCase: number | null; casesWithAny: Share };
}

export interface OutcomeReport {
  periodStart: string;
  periodEnd: string;
  /** The months counted, `YYYY-MM`. */
  months: [string, string];
  generated: string;
  concordanceCodes: string[];
  strata: StratumFigures[];
  /** The turnaround of all opinions delivered in the period: the histogram's non-empty buckets. */
  turnaroundHistogram: { upToHours: number; count: number }[];
}

export type Labels = (stratifier: Stratifier, values: string[]) => Promise<Map<string, string>>;

export class OutcomeReports {
  constructor(
    private readonly ledger: OutcomeLedger,
    readonly concordanceCodes: string[],
    private readonly labels: Labels,
  ) {}

  async report(query: ReportQuery, now = new Date()): Promise<OutcomeReport> {
    const [from, to] = [monthOf(query.periodStart), monthOf(query.periodEnd)];
    const dims = ['all', ...query.by.filter((b) => b !== 'month')];
    const byMonth = query.by.includes('month');
    const dueBefore = now.toISOString().slice(0, 16);
    const waitingDims = byMonth ? [...dims, 'month'] : dims;
    const [counted, countedByMonth, waiting, overdue] = await Promise.all([
      this.ledger.sums(from, to, dims),
      byMonth ? this.ledger.sums(from, to, ['all'], { byPeriod: true }) : Promise.resolve([]),
      this.ledger.waitingCounts(from, to, waitingDims),
      this.ledger.waitingCounts(from, to, waitingDims, dueBefore),
    ]);
    const key = (s: { dim: string; value: string }): string => `${s.dim}|${s.value}`;
    const strata = new Map<string, { dim: string; value: string; sums: Record<string, number>; waiting: number; overdue: number }>();
    const stratum = (s: { dim: string; value: string }) => {
      const found = strata.get(key(s)) ?? { dim: s.dim, value: s.value, sums: {}, waiting: 0, overdue: 0 };
      strata.set(key(s), found);
      return found;
    };
    stratum({ dim: 'all', value: 'all' });
    for (const s of [...counted, ...countedByMonth]) stratum(s).sums = s.sums;
    for (const s of waiting) stratum(s).waiting = s.sums.waiting ?? 0;
    for (const s of overdue) stratum(s).overdue = s.sums.waiting ?? 0;
    const order = ['all', ...query.by];
    const sorted = [...strata.values()].sort((a, b) => order.indexOf(a.dim) - order.indexOf(b.dim) || a.value.localeCompare(b.value));
    const labelled = new Map<string, string>();
    for (const dim of query.by) {
      for (const [value, label] of await this.labels(
        dim,
        sorted.filter((s) => s.dim === dim).map((s) => s.value),
      ))
        labelled.set(`${dim}|${value}`, label);
    }
    const total = strata.get('all|all')?.sums ?? {};
    return {
      periodStart: query.periodStart,
      periodEnd: query.periodEnd,
      months: [from, to],
      generated: now.toISOString(),
      concordanceCodes: this.concordanceCodes,
      strata: sorted.map((s) => ({
        ...this.figures(s.sums, s.waiting, s.overdue),
        stratifier: s.dim as Stratifier | 'all',
        value: s.value,
        ...(labelled.has(key(s)) ? { label: labelled.get(key(s)) } : {}),
      })),
      turnaroundHistogram: histogramOf(total)
        .map((count, bucket) => ({ upToHours: bucketEdgeHours(bucket), count }))
        .filter((b) => b.count > 0),
    };
  }

  private figures(sums: Record<string, number>, waiting: number, overdue: number): Omit<StratumFigures, 'stratifier' | 'value' | 'label'> {
    const n = (field: string): number => sums[field] ?? 0;
    const delivered = n('delivered');
    const histogram = histogramOf(sums);
    return {
      opened: n('opened'),
      delivered,
      concordance: Object.fromEntries(this.concordanceCodes.map((code) => [code, shareOf(n(concordanceField(code)), delivered)])),
      turnaroundHours: {
        median: percentileHours(histogram, 0.5),
        p90: percentileHours(histogram, 0.9),
        p99: percentileHours(histogram, 0.99),
        mean: delivered ? n('turnaroundSeconds') / delivered / 3600 : null,
      },
      waiting,
      overdue,
      informationRequests: {
        total: n('questions'),
        perCase: delivered ? n('questions') / delivered : null,
        casesWithAny: shareOf(n('withQuestions'), delivered),
      },
    };
  }
}

function histogramOf(sums: Record<string, number>): number[] {
  return Array.from({ length: turnaroundBuckets }, (_, b) => sums[bucketField(b)] ?? 0);
}

/** The report as CSV: one row per stratum, one column per figure (RFC 4180 quoting). */
export function reportCsv(report: OutcomeReport): string {
  const share = (name: string, s: Share): [string, unknown][] => [
    [`${name}_count`, s.count],
    [`${name}_share`, s.share],
    [`${name}_ci95_low`, s.ci95?.[0]],
    [`${name}_ci95_high`, s.ci95?.[1]],
  ];
  const rows = report.strata.map((s): [string, unknown][] => [
    ['period_start', report.periodStart],
    ['period_end', report.periodEnd],
    ['stratifier', s.stratifier],
    ['value', s.value],
    ['label', s.label],
    ['opened', s.opened],
    ['delivered', s.delivered],
    ...report.concordanceCodes.flatMap((code) => share(code, s.concordance[code])),
    ['turnaround_median_hours', s.turnaroundHours.median],
    ['turnaround_p90_hours', s.turnaroundHours.p90],
    ['turnaround_p99_hours', s.turnaroundHours.p99],
    ['turnaround_mean_hours', s.turnaroundHours.mean],
    ['waiting', s.waiting],
    ['overdue', s.overdue],
    ['information_requests', s.informationRequests.total],
    ['information_requests_per_case', s.informationRequests.perCase],
    ...share('cases_with_information_requests', s.informationRequests.casesWithAny),
  ]);
  const cell = (value: unknown): string => {
    const text = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  const header = (rows[0] ?? []).map(([name]) => name);
  return [header.join(','), ...rows.map((r) => r.map(([, v]) => cell(v)).join(','))].join('\r\n') + '\r\n';
}
