// Calling an operation from the table: the OperationDefinition says on which types and at which level
// (system, type, instance) it may be called; the caller's role must be allowed to call it, and the
// instance it is called on must be one the caller may read.
import type { Request } from 'express';
import type { Gate } from '../access/gate.js';
import { isPatientLabel } from '../access/labels.js';
import type { FhirService, Reply } from '../fhir/interactions.js';
import { badRequest, methodNotAllowed } from '../base/outcome.js';
import type { OperationTable } from './index.js';
import { inputsOf } from './parameters.js';

/** Runs operation `name` (`$code`) for a caller whose role may call it, on an instance the caller may read. */
export async function invokeOperation(
  service: FhirService,
  operations: OperationTable,
  req: Request,
  type: string,
  id: string | undefined,
  name: string,
  gate: Gate,
): Promise<Reply> {
  const code = name.replace(/^\$/, '');
  const operation = operations.get(code);
  const definition = operation?.definition;
  const on = (definition?.resource ?? []) as string[];
  const system = type === '';
  if (
    !operation ||
    !definition ||
    (system ? !definition.system : !(on.includes('Resource') || on.includes(type)) || !(id ? definition.instance : definition.type))
  ) {
    throw methodNotAllowed(`Operation ${name} is not supported ${system ? 'at system level' : `${id ? 'on an instance of' : 'on'} ${type}`}`);
  }
  if (!operation.methods.includes(req.method)) {
    throw methodNotAllowed(`${name} is called with ${operation.methods.join(' or ')}`);
  }
  // A parameter in the URL that the OperationDefinition does not declare is refused, never ignored.
  const declared = inputsOf(definition);
  const unknown = Object.keys(req.query).find((key) => !declared.has(key) && key !== '_format' && key !== '_pretty');
  if (unknown !== undefined) throw badRequest(`${name} has no parameter "${unknown.slice(0, 40)}"`, unknown.slice(0, 40));
  if (!system) service.checkType(type);
  gate.checkOperation(code);
  const instance = id ? (service.checkId(id), await service.visible(type, id, gate)) : undefined;
  const reply = await operation.run({
    service,
    definition,
    type,
    id,
    body: req.body,
    method: req.method,
    query: req.query,
    headers: req.headers,
    gate,
  });
  return { ...reply, patients: reply.patients ?? instance?.access?.filter(isPatientLabel) };
}
