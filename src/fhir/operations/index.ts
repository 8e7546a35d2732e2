// Operations: each handler is found by its code, and the OperationDefinition in profiles/ says on which
// types and at which level (system, type, instance) it may be called. Adding an operation: write its
// OperationDefinition in profiles/, its handler in this folder, and list it below.
import type { IncomingHttpHeaders } from 'node:http';
import type { Request } from 'express';
import type { Gate } from '../../access/gate.js';
import { isPatientLabel } from '../../access/ownership.js';
import type { FhirService, Reply } from '../interactions.js';
import { methodNotAllowed } from '../outcome.js';
import { casePacket } from './case-packet.js';
import { validateOperation } from './validate.js';

export interface Invocation {
  /** The resource type; empty for a system-level call (`/fhir/$name`). */
  type: string;
  id?: string;
  body: unknown;
  method: string;
  /** The caller's access (the instance an operation is called on has passed it already). */
  gate: Gate;
  query: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

export type OperationHandler = (service: FhirService, call: Invocation) => Promise<Reply>;

const builtIn: Record<string, { methods: string[]; run: OperationHandler }> = {
  validate: { methods: ['POST'], run: (service, { type, id, body, gate }) => validateOperation(service, type, id, body, gate) },
  'case-packet': { methods: ['GET'], run: (service, { id }) => casePacket(service, id as string) },
};

/** Runs an operation for a caller whose role may call it, on an instance the caller may read. */
export async function invokeOperation(service: FhirService, req: Request, type: string, id: string | undefined, name: string, gate: Gate): Promise<Reply> {
  const code = name.replace(/^\$/, '');
  const definition = service.conformance.operations.get(code);
  const handler = service.operations.get(code) ?? builtIn[code];
  const on = (definition?.resource ?? []) as string[];
  const system = type === '';
  if (!definition || !handler || (system ? !definition.system : !(on.includes('Resource') || on.includes(type)) || !(id ? definition.instance : definition.type))) {
    throw methodNotAllowed(`Operation ${name} is not supported ${system ? 'at system level' : `${id ? 'on an instance of' : 'on'} ${type}`}`);
  }
  if (!handler.methods.includes(req.method)) {
    throw methodNotAllowed(`${name} is called with ${handler.methods.join(' or ')}`);
  }
  if (!system) service.checkType(type);
  gate.checkOperation(code);
  const instance = id ? (service.checkId(id), await service.visible(type, id, gate)) : undefined;
  const reply = await handler.run(service, { type, id, body: req.body, method: req.method, query: req.query as Record<string, unknown>, headers: req.headers, gate });
  return { ...reply, patients: reply.patients ?? instance?.access?.filter(isPatientLabel) };
}
