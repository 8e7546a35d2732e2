// $validate (type and instance level): the verdict a write would get, without storing.
// Parameters are read as the OperationDefinition in profiles/ declares them.
import type { Parameters, Resource } from '@medplum/fhirtypes';
import type { Reply } from '../fhir/interactions.js';
import { badRequest, informational } from '../base/outcome.js';
import type { Invocation, Operation } from './operation.js';
import { inputsOf } from './parameters.js';

export const validate: Operation = { code: 'validate', methods: ['POST'], run: validateResource };

async function validateResource({ service, definition, type, id, body, gate, query }: Invocation): Promise<Reply> {
  const declared = inputsOf(definition);
  let resource: unknown = body;
  // With the resource itself as the body, profile and mode come in the URL (`$validate?profile=...`).
  const inUrl = (name: 'profile' | 'mode'): string | undefined => {
    const value = query[name];
    if (value !== undefined && typeof value !== 'string') throw badRequest(`${name} is given once`, name);
    return value;
  };
  let profileUrl = inUrl('profile');
  let mode = inUrl('mode');
  let where = { profile: 'profile', mode: 'mode' };
  if ((body as Resource | undefined)?.resourceType === 'Parameters') {
    if (profileUrl !== undefined || mode !== undefined)
      throw badRequest('profile and mode are given in the Parameters body or in the URL, not both', 'Parameters');
    where = { profile: 'Parameters.parameter.profile', mode: 'Parameters.parameter.mode' };
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
  // FHIR's ResourceValidationMode; `profile` asks only whether the resource meets the profile named.
  if (mode && !['create', 'update', 'delete', 'profile'].includes(mode)) {
    throw badRequest(`mode must be create, update, delete or profile`, where.mode);
  }
  if (mode === 'profile' && !profileUrl) throw badRequest('mode profile needs the profile to validate against', where.profile);
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
    // FHIR: a server that cannot validate against the profile named SHALL say so, not judge without it.
    throw badRequest(`Unknown profile ${profileUrl.slice(0, 200)}`, where.profile);
  }
  // The verdict is in the issues; 200 says the validation itself ran.
  return { status: 200, body: service.validate(type, resource, profile) };
}
