// What a refused input answers, caught where a pure function throws it: the HTTP status and the
// OperationOutcome's expressions, as a client would read them.
import { FhirError } from '../../src/base/outcome.js';

export function refusal(run: () => unknown): { status: number; expression: string[] } {
  try {
    run();
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    return { status: err.status, expression: err.outcome.issue?.flatMap((i) => i.expression ?? []) ?? [] };
  }
  throw new Error('expected a refusal, got none');
}
