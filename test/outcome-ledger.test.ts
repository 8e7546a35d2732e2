// Exactly once: the outcome counters equal the sum of what each case's recorded facts contribute,
// however often a change is recorded again and wherever the writing process is killed.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose, { type Connection } from 'mongoose';
import { contributions, difference, merged } from '../src/outcomes/counters.js';
import { OutcomeLedger } from '../src/outcomes/ledger.js';
import { caseStory } from './outcome-cases.js';

let connection: Connection;
const databaseName = `test-ledger-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  connection = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: databaseName }).asPromise();
});
afterAll(async () => {
  await connection?.dropDatabase();
  await connection?.close();
});

/** Every counter field that is not zero, by counter, as the ledger holds them. */
async function counters(ledger: OutcomeLedger): Promise<Record<string, Record<string, number>>> {
  const held: Record<string, Record<string, number>> = {};
  for (const { _id, applied, kind: _k, period: _p, dim: _d, value: _v, due: _due, ...fields } of await ledger.counters.find({}).toArray()) {
    expect(Object.keys((applied as object | undefined) ?? {})).toEqual([]); // no event left half-released
    const nonZero = Object.entries(fields as Record<string, number>).filter(([, n]) => n !== 0);
    if (nonZero.length) held[_id] = Object.fromEntries(nonZero.sort());
  }
  return held;
}

/** What the counters should hold: the contributions of the facts each case document records. */
async function expected(ledger: OutcomeLedger): Promise<Record<string, Record<string, number>>> {
  const cases = await ledger.cases.find({}).toArray();
  const all = merged(cases.flatMap((c) => [...contributions(c.counted).values()]));
  return Object.fromEntries(
    all
      .map((d) => [
        d.key,
        Object.fromEntries(
          Object.entries(d.inc)
            .filter(([, n]) => n !== 0)
            .sort(),
        ),
      ])
      .filter(([, f]) => Object.keys(f).length),
  );
}

/** A process recording `cases` case stories (test/outcome-writer.ts), killed with SIGKILL after `killAfterMs` when given. */
function writer(name: string, cases: number, killAfterMs?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/test/outcome-writer.js', process.env.MONGODB_URI as string, name, String(cases)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.once('data', () => {
      if (killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.once('exit', (code, signal) => (code === 0 || signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code}`))));
  });
}

describe('the outcome ledger', () => {
  it('counts a change once, however often it is recorded, and moves a count when a fact changes', async () => {
    const ledger = new OutcomeLedger(connection);
    const [opened, delivered, amended] = caseStory(0);
    expect(await ledger.record('one', async () => opened)).toBe(true);
    expect(await ledger.record('one', async () => opened)).toBe(false);
    expect(await ledger.waiting.findOne({ _id: 'one' })).toEqual({ _id: 'one', period: '2026-01', due: '2026-01-15T10:00', strata: opened.strata });
    await Promise.all([ledger.record('one', async () => delivered), ledger.record('one', async () => delivered)]);
    const total = await ledger.counters.findOne({ _id: 'm|2026-02|all|all' });
    expect([total?.delivered, total?.['concordance_concordant']]).toEqual([1, 1]);
    await ledger.record('one', async () => amended);
    await ledger.record('one', async () => amended);
    const moved = await ledger.counters.findOne({ _id: 'm|2026-02|specialty|s0' });
    expect([moved?.delivered, moved?.['concordance_concordant'], moved?.['concordance_minor-discrepancy']]).toEqual([1, 0, 1]);
    expect(await ledger.waiting.countDocuments({})).toBe(0);
    expect(await counters(ledger)).toEqual(await expected(ledger));
  });

  it('counts every case exactly when many move at once', async () => {
    const ledger = new OutcomeLedger(connection);
    const ids = Array.from({ length: 40 }, (_, i) => `together-${i}`);
    for (const step of [0, 1, 2]) {
      await Promise.all(ids.flatMap((id, i) => [ledger.record(id, async () => caseStory(i)[step]), ledger.record(id, async () => caseStory(i)[step])]));
    }
    expect(await counters(ledger)).toEqual(await expected(ledger));
    expect(await ledger.changes.countDocuments({})).toBe(0);
  });

  it('drops a change made from facts another change had already replaced, before it counts anything', async () => {
    const ledger = new OutcomeLedger(connection);
    const [opened, delivered, amended] = caseStory(7);
    for (const facts of [opened, delivered, amended]) await ledger.record('raced', async () => facts);
    const before = await counters(ledger);
    // What a process that read the case while it was opened, and stopped, would have left.
    await ledger.changes.insertOne({
      _id: 'raced',
      change: 'late',
      phase: 'apply',
      owner: 'gone',
      lease: new Date(0),
      deltas: difference(opened, delivered),
      becomes: { seq: 2, counted: delivered },
    });
    expect(await ledger.recover()).toBe(1);
    expect(await counters(ledger)).toEqual(before);
    expect((await ledger.cases.findOne({ _id: 'raced' }))?.counted).toEqual(amended);
    expect(await ledger.changes.countDocuments({})).toBe(0);
  });

  it('upgrades a ledger that counted waiting cases per due minute: they become the waiting set', async () => {
    const old = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: `${databaseName}-old` }).asPromise();
    try {
      const ledger = new OutcomeLedger(old);
      const [opened] = caseStory(3);
      await ledger.cases.insertOne({ _id: 'waits', seq: 1, counted: opened });
      await ledger.counters.insertOne({
        _id: 'w|2026-01|2026-01-15T10:00|all|all',
        kind: 'waiting',
        period: '2026-01',
        due: '2026-01-15T10:00',
        dim: 'all',
        value: 'all',
        waiting: 1,
      });
      await ledger.recover();
      expect(await ledger.counters.countDocuments({ kind: 'waiting' })).toBe(0);
      expect(await ledger.waitingCounts('2026-01', '2026-12', ['all', 'specialty'])).toEqual([
        { dim: 'all', value: 'all', sums: { waiting: 1 } },
        { dim: 'specialty', value: opened.strata.specialty, sums: { waiting: 1 } },
      ]);
    } finally {
      await old.dropDatabase();
      await old.close();
    }
  });

  it('survives being killed mid-way, again and again: after recovery every count is exact', async () => {
    const name = `${databaseName}-kill`;
    for (const killAfterMs of [150, 400, 700, 1000, 1300]) await writer(name, 60, killAfterMs);
    await writer(name, 60); // to the end, replaying every case from the start
    await expectExactAfterRecovery(name, 60);
  }, 120_000);

  it('three processes recording the same cases at once, one killed mid-way: every count is exact', async () => {
    const name = `${databaseName}-processes`;
    await Promise.all([writer(name, 40), writer(name, 40, 500), writer(name, 40)]);
    // The killed writer's last record of a case may set it back a step after the others finished it:
    // one more writer brings every case to its end, so that all 40 count as delivered.
    await writer(name, 40);
    await expectExactAfterRecovery(name, 40);
  }, 120_000);
});

/** After recovery, no change is left in progress, the counters equal the cases' facts, and `cases` cases were delivered. */
async function expectExactAfterRecovery(name: string, cases: number): Promise<void> {
  const written = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: name }).asPromise();
  try {
    const ledger = new OutcomeLedger(written);
    await ledger.recover();
    expect(await ledger.changes.countDocuments({})).toBe(0);
    const held = await counters(ledger);
    expect(held).toEqual(await expected(ledger));
    expect(held['m|2026-02|all|all'].delivered + held['m|2026-03|all|all'].delivered + held['m|2026-04|all|all'].delivered).toBe(cases);
  } finally {
    await written.dropDatabase();
    await written.close();
  }
}
