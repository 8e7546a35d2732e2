// A background worker that takes one piece of work at a time from the database, and when there is
// none waits for the poll interval or a nudge. Stopping waits for the piece in hand.
export abstract class WorkLoop {
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(private readonly pollMs: number) {}

  /** Does at most one piece of work; answers whether there was one. */
  protected abstract takeOne(): Promise<boolean>;

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Looks for work now instead of at the next poll. */
  nudge(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (await this.takeOne()) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
