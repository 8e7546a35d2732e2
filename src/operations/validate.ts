// $validate (type and instance level): the verdict a write would get, without storing.
// Parameters are read as the OperationDefinition in profiles/ declares them.
import type { Parameters, Resource } from '@medplum/fhirtypes';
import type { Reply } from '../fhir/interactions.js';
import { badRequest, informational } from '../base/outcome.js';
import type { Invocation, Operation } from './operation.js';

export const validate: Operation = { code: 'validate', methods: ['POST'], run: validateResource };

async function validateResource({ service, definition, type, id, body, gate }: Invocation): Promise<Reply> {
  const declared = new Set(definition.parameter?.filter((p) => p.use === 'in').map((p) => p.name));
  let resource: unknown = body;
  let profileUrl: string | undefined;
  let mode: string | undefined;
  if ((body as Resource | undefined)?.resourceType === 'Parameters') {
    const params = (body as Parameters).parameter ?? [];
    for (const [i, p] of params.entries()) {
      if (!declared.has(p.name)) {
        throw badRequest(`$validate has no parameter "${p.name}"`, `Parameters.parameter[${i}].name`);
      }
    }
    resource = params.find((p) => p.name === 'resource')?.resource;
    profileUrl = params.find((p) => p.name === 'profile')?.valueCanonical ?? params.find((p) => p.name === 'profile')?.valueUri;
    mode = params.find((p) => p.name === 'mode')?.valueCode;
  }
  if (mode && !['create', 'update', 'delete'].includes(mode)) {
    throw badRequest(`mode must be create, update or delete`, 'Parameters.parameter.mode');
  }
  if (id && !resource) {
    resource = (await service.read(type, id, gate)).body;
  }
  if (mode === 'delete') {
    service.checkType(type);
    return {
      status: 200,
      body: informational('Delete allowed'),
    };
  }
  const profile = profileUrl ? service.conformance.profiles.get(profileUrl) : undefined;
  if (profileUrl && !profile) {
    throw badRequest(`Unknown profile ${profileUrl}`, 'Parameters.parameter.profile');
  }
  // The verdict is in the issues; 200 says the validation itself ran.
  return { status: 200, body: service.validate(type, resource, profile) };
}
