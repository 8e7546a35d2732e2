// One structured logger for the service. Log lines carry ids and statuses, never resource content.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'second-opinion' } });
}
