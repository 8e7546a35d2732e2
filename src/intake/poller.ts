// Pull intake: every interval, each registered institution is asked for new second-opinion requests.
// One round at a time; a failing institution is logged and asked again next round.
import type { Logger } from '../logger.js';

export class Poller {
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;

  constructor(
    private readonly pollAll: (onError: (endpoint: { id?: string }, err: unknown) => void) => Promise<void>,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.round ??= this.pollAll((endpoint, err) => this.log.warn({ endpoint: endpoint.id, err: (err as Error).name }, 'polling an institution failed'))
        .catch((err: Error) => this.log.warn({ err: err.name }, 'polling the institutions failed'))
        .finally(() => (this.round = undefined));
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
  }
}
