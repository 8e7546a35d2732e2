// Operations: each handler is found by its code, and the OperationDefinition in profiles/ says on which
// types and at which level (type, instance) it may be called. Adding an operation: write its
// OperationDefinition in profiles/, its handler in this folder, and list it below.
import type { Request } from 'express';
import type { FhirService, Reply } from '../interactions.js';
import { methodNotAllowed } from '../outcome.js';
import { casePacket } from './case-packet.js';
import { validateOperation } from './validate.js';

export interface Invocation {
  type: string;
  id?: string;
  body: unknown;
  method: string;
  /** The query string, for operations called with GET. */
  query: Record<string, unknown>;
}

export type OperationHandler = (service: FhirService, call: Invocation) => Promise<Reply>;

const builtIn: Record<string, { methods: string[]; run: OperationHandler }> = {
  validate: { methods: ['POST'], run: (service, { type, id, body }) => validateOperation(service, type, id, body) },
  'case-packet': { methods: ['GET'], run: (service, { id }) => casePacket(service, id as string) },
};

export function invokeOperation(service: FhirService, req: Request, type: string, id: string | undefined, name: string): Promise<Reply> {
  const code = name.replace(/^\$/, '');
  const definition = service.conformance.operations.get(code);
  const handler = service.operations.get(code) ?? builtIn[code];
  const on = (definition?.resource ?? []) as string[];
  if (!definition || !handler || !(on.includes('Resource') || on.includes(type)) || !(id ? definition.instance : definition.type)) {
    throw methodNotAllowed(`Operation ${name} is not supported ${id ? 'on an instance of' : 'on'} ${type}`);
  }
  if (!handler.methods.includes(req.method)) {
    throw methodNotAllowed(`${name} is called with ${handler.methods.join(' or ')}`);
  }
  service.checkType(type);
  return handler.run(service, { type, id, body: req.body, method: req.method, query: req.query as Record<string, unknown> });
}
