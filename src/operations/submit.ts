// POST /fhir/ServiceRequest/$submit: an EHR names a ServiceRequest on its own server for the service
// to fetch and take in (intake/submit.ts), as if it had been POSTed here.
import type { RequestIntake } from '../intake/submit.js';
import type { Operation } from './operation.js';

export function submit(intake: RequestIntake): Operation {
  return { code: 'submit', methods: ['POST'], run: ({ body, gate }) => intake.submit(body, gate.owner) };
}
