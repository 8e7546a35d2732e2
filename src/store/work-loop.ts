// A background worker that takes one piece of work at a time from the database, and when there is
// none waits for a nudge: from this process, or from the change feed when another process makes
// work (wakeOn). Polling stays as the fallback, slower while the feed is live: it still finds work
// whose lease ran out, which no change announces. Stopping aborts `stopSignal`, which ends the calls
// and waits of the piece in hand (it gives its work back unfinished), and waits for it. A piece that
// fails past its own handling (the database gone mid-way, say) is reported and left to its lease: the
// loop goes on after a wait, and the process with it.
import type { ChangeFeed, WorkIn } from './change-feed.js';

/** How much longer the poll waits while a change feed wakes the loop. */
const slowerWithFeed = 5;

export abstract class WorkLoop {
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  /** A nudge that came while work was being looked for: look again before waiting. */
  private nudged = false;
  private feed?: ChangeFeed;
  private stopping = new AbortController();

  /** `failed` hears of a piece of work that threw (its own handling could not record the failure). */
  constructor(
    private readonly pollMs: number,
    private readonly failed: (err: Error) => void,
  ) {}

  /** Does at most one piece of work; answers whether there was one. */
  protected abstract takeOne(): Promise<boolean>;

  /** Aborted when the loop is told to stop: the piece in hand ends its calls and waits. */
  protected get stopSignal(): AbortSignal {
    return this.stopping.signal;
  }

  start(): void {
    this.running = true;
    this.stopping = new AbortController();
    this.loop = this.run();
  }

  /** Looks for work now instead of at the next poll. */
  nudge(): void {
    this.nudged = true;
    this.wake?.();
  }

  /** Looks for work on each change of `collection` that `work` picks (undefined: changes may have been missed). */
  wakeOn(feed: ChangeFeed, collection: string, work: WorkIn): void {
    this.feed = feed;
    feed.on(
      collection,
      (change) => {
        if (work.wanted(change)) this.nudge();
      },
      work.selector,
    );
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.nudged = false;
      let worked = false;
      try {
        worked = await this.takeOne();
      } catch (err) {
        this.failed(err as Error);
      }
      if (worked) continue;
      // Stopped while looking: stop() found no wait to cut short, so none is begun.
      if (this.nudged || !this.running) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.feed?.live ? this.pollMs * slowerWithFeed : this.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
