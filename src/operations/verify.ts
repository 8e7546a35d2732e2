// GET or POST /fhir/DiagnosticReport/{id}/$verify: whether an opinion's signature still holds over
// the report as stored (opinion/opinions.ts).
import type { Opinions } from '../opinion/opinions.js';
import type { Operation } from './operation.js';

export function verify(opinions: Opinions): Operation {
  return { code: 'verify', methods: ['GET', 'POST'], run: ({ id }) => opinions.verify(id as string) };
}
