// Pull intake: every interval, each registered institution is asked for new second-opinion requests.
// One round at a time; a failing institution is logged and asked again next round; an order it refused
// is logged by its id on the institution's server and the element at fault (never its content).
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Logger } from '../logger.js';

type OnError = (endpoint: { id?: string }, err: unknown) => void;
type OnRefused = (endpoint: { id?: string }, refused: { id: string; issues: OperationOutcomeIssue[] }[]) => void;

export class Poller {
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;

  constructor(
    private readonly pollAll: (onError: OnError, onRefused: OnRefused) => Promise<void>,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.round ??= this.pollAll(
        (endpoint, err) => this.log.warn({ endpoint: endpoint.id, err: (err as Error).name }, 'polling an institution failed'),
        (endpoint, refused) => {
          for (const order of refused)
            this.log.warn({ endpoint: endpoint.id, order: order.id, at: order.issues.flatMap((i) => i.expression ?? []) }, 'an order was refused');
        },
      )
        .catch((err: Error) => this.log.warn({ err: err.name }, 'polling the institutions failed'))
        .finally(() => (this.round = undefined));
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
  }
}
