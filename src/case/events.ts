// What a background stage tells the case pipeline (case/pipeline.ts) that is not a write through the
// FHIR service: told by a worker before it marks its durable job done, so that a crash in between
// runs the job again, which tells again.

export interface CaseEventMap {
  /** Retrieval's job has pulled the chart (or stopped the case): the case may be routed. */
  'chart-retrieved': { taskId: string };
}

type Handler<K extends keyof CaseEventMap> = (event: CaseEventMap[K]) => Promise<void>;

export class CaseEvents {
  private readonly handlers = new Map<keyof CaseEventMap, Handler<keyof CaseEventMap>[]>();

  /** Runs `handler` on every `kind` event, after the handlers already there. */
  on<K extends keyof CaseEventMap>(kind: K, handler: Handler<K>): void {
    this.handlers.set(kind, [...(this.handlers.get(kind) ?? []), handler as Handler<keyof CaseEventMap>]);
  }

  /** Runs the handlers of `kind` in order; a failure reaches the teller (whose job is then tried again). */
  async tell<K extends keyof CaseEventMap>(kind: K, event: CaseEventMap[K]): Promise<void> {
    for (const handler of this.handlers.get(kind) ?? []) await handler(event);
  }
}
