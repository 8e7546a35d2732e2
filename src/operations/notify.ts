// POST /fhir/Endpoint/{id}/$notify: an institution says it has new orders; the service polls it now
// rather than at the next interval (intake/submit.ts).
import type { RequestIntake } from '../intake/submit.js';
import type { Operation } from './operation.js';

export function notify(intake: RequestIntake): Operation {
  return { code: 'notify', methods: ['POST'], run: ({ id, gate }) => intake.notify(id as string, gate.owner) };
}
