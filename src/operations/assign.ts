// POST /fhir/Task/{id}/$assign: a coordinator (re)assigns a case to a reviewer's PractitionerRole.
// The rules (when a case may be assigned, and to whom) are the routing's; see review/routing.ts.
import type { Reference } from '@medplum/fhirtypes';
import type { Routing } from '../review/routing.js';
import type { Operation } from './operation.js';
import { readParameters } from './parameters.js';

export function assign(routing: Routing): Operation {
  return {
    code: 'assign',
    methods: ['POST'],
    run: async ({ id, body, definition }) => {
      const owner = readParameters(definition, body).get('owner')?.[0].valueReference as Reference;
      const task = await routing.assign(id as string, owner.reference as string);
      return { status: 200, body: task, written: task };
    },
  };
}
