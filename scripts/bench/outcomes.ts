// Benchmark: the full outcome report (every stratifier, one year) over 1,000,000 completed cases,
// from the counters, against the same figures computed from the per-case outcome documents in one
// pass, side by side on the same database. The cases are seeded through the ledger's
// bulk path (the same counter deltas as live cases, merged per counter), with progress printed.
// Run: npm run bench:outcomes [-- --cases 1000000 --runs 5 --baseline-runs 3 --batch 100000]
import mongoose from 'mongoose';
import { createLogger } from '../../src/logger.js';
import { startLocalServer } from '../../src/database/local-server.js';
import type { CaseFacts } from '../../src/outcomes/counters.js';
import { percentileHours, turnaroundBucket, turnaroundBuckets } from '../../src/outcomes/figures.js';
import { OutcomeReports } from '../../src/outcomes/report.js';
import { icd10Chapter, stratifiers } from '../../src/outcomes/strata.js';
import { OutcomeLedger } from '../../src/outcomes/ledger.js';
import { markdownTable, median, option } from './report.js';

const cases = option('cases', 1_000_000);
const runs = option('runs', 5);
const baselineRuns = option('baseline-runs', 3);
const batch = option('batch', 100_000);
const say = (line: string): boolean => process.stdout.write(`${line}\n`);

const concordance = ['concordant', 'minor-discrepancy', 'diagnosis-changed', 'treatment-changed'];
const specialties = ['394593009', '394579002', '394597005', '394591006', '394589003', '394584008', '394609007', '394582007'];
const reasons = [
  'C50.911',
  'C34.90',
  'C18.9',
  'C61',
  'C71.9',
  'C91.00',
  'D05.10',
  'I35.0',
  'I42.0',
  'I25.10',
  'G35',
  'G20',
  'G40.909',
  'M05.9',
  'K50.90',
  'E11.9',
  'N18.4',
  'J84.10',
  'L40.0',
  'Q21.1',
];

/** A deterministic pseudo-random stream (mulberry32), so every run seeds the same cases. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Case `i`: completed in 2026, turnaround log-normal around four days, a few questions now and then. */
function completedCase(i: number, next: () => number): CaseFacts {
  const reason = reasons[Math.floor(next() * reasons.length)];
  const opened = Date.UTC(2026, 0, 1) + Math.floor(next() * 350 * 86_400_000);
  const seconds = Math.round(Math.exp(Math.log(96 * 3600) + 0.8 * Math.sqrt(-2 * Math.log(next() || 1e-9)) * Math.cos(2 * Math.PI * next())));
  const delivered = new Date(Math.min(opened + seconds * 1000, Date.UTC(2026, 11, 31, 23)));
  const u = next();
  return {
    strata: {
      specialty: specialties[i % specialties.length],
      institution: `Organization/institution-${Math.floor(next() * 40)}`,
      reason,
      chapter: icd10Chapter(reason),
    },
    openedMonth: new Date(opened).toISOString().slice(0, 7),
    delivered: {
      month: delivered.toISOString().slice(0, 7),
      seconds,
      bucket: turnaroundBucket(seconds / 60),
      concordance: concordance[u < 0.7 ? 0 : u < 0.85 ? 1 : u < 0.95 ? 2 : 3],
      questions: next() < 0.3 ? 1 + Math.floor(next() * 3) : 0,
    },
  };
}

const log = createLogger('warn');
const database = process.env.MONGODB_URI ? undefined : await startLocalServer(undefined, log);
const uri = database ? database.uri : String(process.env.MONGODB_URI);
const connection = await mongoose.createConnection(uri, { dbName: 'bench-outcomes' }).asPromise();
await connection.dropDatabase();
const ledger = new OutcomeLedger(connection);
say(`seeding ${cases.toLocaleString('en-US')} completed cases in batches of ${batch.toLocaleString('en-US')}; database ${database?.engine ?? 'MONGODB_URI'}`);
const seedStarted = performance.now();
const next = random(2026);
for (let start = 0; start < cases; start += batch) {
  const facts = Array.from({ length: Math.min(batch, cases - start) }, (_, j) => ({ caseId: `case-${start + j}`, facts: completedCase(start + j, next) }));
  await ledger.recordMany(facts);
  const done = start + facts.length;
  {
    const seconds = (performance.now() - seedStarted) / 1000;
    say(`  ${done.toLocaleString('en-US')} cases (${Math.round(done / seconds).toLocaleString('en-US')} a second)`);
  }
}
const counterDocuments = await ledger.counters.estimatedDocumentCount();
say(`seeded in ${((performance.now() - seedStarted) / 1000).toFixed(0)} s: ${counterDocuments.toLocaleString('en-US')} counter documents`);

const query = { periodStart: '2026-01-01', periodEnd: '2026-12-31', by: [...stratifiers] };
const reports = new OutcomeReports(ledger, concordance, async () => new Map());

/**
 * The baseline: the same figures from the per-case outcome documents, read once with a cursor (the
 * fields the figures need) and rolled up into every stratum the way the report makes them: one pass,
 * where a `$group` per stratifier would read the collection once for each.
 */
async function baselineReport(): Promise<Map<string, { delivered: number; concordant: number; median: number | null }>> {
  const byStratum = new Map<string, { delivered: number; concordant: number; histogram: number[] }>();
  const cursor = ledger.cases.find(
    { 'counted.delivered.month': { $gte: '2026-01', $lte: '2026-12' } },
    { projection: { 'counted.strata': 1, 'counted.delivered': 1 }, batchSize: 10_000 },
  );
  for await (const { counted } of cursor) {
    const delivered = counted.delivered!;
    const values: Record<string, string> = { all: 'all', ...counted.strata, month: delivered.month };
    for (const dim of ['all', ...stratifiers]) {
      const key = `${dim}|${values[dim]}`;
      const figure = byStratum.get(key) ?? { delivered: 0, concordant: 0, histogram: new Array<number>(turnaroundBuckets).fill(0) };
      figure.delivered += 1;
      if (delivered.concordance === 'concordant') figure.concordant += 1;
      figure.histogram[delivered.bucket] += 1;
      byStratum.set(key, figure);
    }
  }
  return new Map([...byStratum].map(([key, f]) => [key, { delivered: f.delivered, concordant: f.concordant, median: percentileHours(f.histogram, 0.5) }]));
}

const timed = async <T>(work: () => Promise<T>): Promise<{ seconds: number; result: T }> => {
  const started = performance.now();
  const result = await work();
  return { seconds: (performance.now() - started) / 1000, result };
};
const counters: number[] = [];
let report: Awaited<ReturnType<typeof reports.report>> | undefined;
for (let run = 1; run <= runs; run++) {
  const { seconds, result } = await timed(() => reports.report(query));
  counters.push(seconds);
  report = result;
  say(`counters run ${run}: ${seconds.toFixed(3)} s, ${result.strata.length} strata`);
}
const baseline: number[] = [];
let expected: Awaited<ReturnType<typeof baselineReport>> | undefined;
for (let run = 1; run <= baselineRuns; run++) {
  const { seconds, result } = await timed(baselineReport);
  baseline.push(seconds);
  expected = result;
  say(`baseline run ${run}: ${seconds.toFixed(3)} s`);
}
const disagreeing = (report?.strata ?? []).filter((s) => {
  const other = expected?.get(`${s.stratifier}|${s.value}`);
  return (
    s.delivered > 0 &&
    (!other || other.delivered !== s.delivered || other.concordant !== s.concordance.concordant.count || other.median !== s.turnaroundHours.median)
  );
});
const [c, b] = [median(counters), median(baseline)];
const rows = [
  [
    'counters (the report: counter documents selected and added up)',
    cases.toLocaleString('en-US'),
    String(report?.strata.length),
    c.toFixed(3),
    `${(b / c).toFixed(1)}x`,
  ],
  ['one pass over the per-case outcome documents', cases.toLocaleString('en-US'), String(expected?.size), b.toFixed(3), '1.0x'],
];
say(`\n${markdownTable(['approach', 'cases', 'strata', 'seconds (median)', 'vs per-case pass'], rows)}`);
say(
  `\nfull report from counters ${c.toFixed(3)} s (target < 2 s): ${c < 2 ? 'met' : 'NOT met'}; figures agree with the baseline: ${disagreeing.length ? `NO (${disagreeing.length} strata differ)` : 'yes'}`,
);
await connection.dropDatabase();
await connection.close();
await database?.stop();
