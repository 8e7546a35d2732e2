// POST /fhir/Task/{id}/$assign: a coordinator (re)assigns a case to a reviewer's PractitionerRole.
// The rules (when a case may be assigned, and to whom) are the routing's; see review/routing.ts.
import type { OperationDefinition, Reference } from '@medplum/fhirtypes';
import type { Routing } from '../../review/routing.js';
import type { OperationHandler } from './index.js';
import { readParameters } from './parameters.js';

export function assignOperation(routing: Routing): { methods: string[]; run: OperationHandler } {
  return {
    methods: ['POST'],
    run: async (service, { id, body }) => {
      const definition = service.conformance.operations.get('assign') as OperationDefinition;
      const owner = readParameters(definition, body).get('owner')?.[0].valueReference as Reference;
      const task = await routing.assign(id as string, owner.reference as string);
      return { status: 200, body: task, written: task };
    },
  };
}
