// A background worker outlives a piece of work that throws past its own handling (the database gone
// while the failure was being recorded, say): the failure is reported, the loop waits and takes work
// again, and nothing escapes as an unhandled rejection, which would end the process.
import { afterEach, describe, expect, it } from '@jest/globals';
import { WorkLoop } from '../../src/store/work-loop.js';

class Flaky extends WorkLoop {
  readonly calls: number[] = [];
  readonly reported: string[] = [];

  constructor(private readonly outcomes: (boolean | Error)[]) {
    super(20, (err) => this.reported.push(err.message));
  }

  protected takeOne(): Promise<boolean> {
    this.calls.push(Date.now());
    const next = this.outcomes.shift() ?? false;
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  }
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
process.on('unhandledRejection', onUnhandled);
afterEach(() => {
  unhandled.length = 0;
});

describe('a work loop', () => {
  it('reports a piece of work that threw, waits, and goes on taking work', async () => {
    const loop = new Flaky([true, new Error('client must be connected'), true, false]);
    loop.start();
    await new Promise((r) => setTimeout(r, 150));
    await loop.stop();
    process.off('unhandledRejection', onUnhandled);
    expect(loop.reported).toEqual(['client must be connected']);
    // Work, the failure, then a wait of a poll before the next piece, then more polls.
    expect(loop.calls.length).toBeGreaterThanOrEqual(4);
    expect(loop.calls[2] - loop.calls[1]).toBeGreaterThanOrEqual(15);
    expect(unhandled).toEqual([]);
  });
});
