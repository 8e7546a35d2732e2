// Operations: each handler is found by its code, and the OperationDefinition in profiles/ says on which
// types and at which level (system, type, instance) it may be called. Adding an operation: write its
// OperationDefinition in profiles/, its handler in this folder, and list it below.
import type { IncomingHttpHeaders } from 'node:http';
import type { Request } from 'express';
import type { Principal } from '../../auth/bearer.js';
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
  query: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  /** Who is calling, as the verified token says. */
  caller?: Principal;
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
  const system = type === '';
  if (!definition || !handler || (system ? !definition.system : !(on.includes('Resource') || on.includes(type)) || !(id ? definition.instance : definition.type))) {
    throw methodNotAllowed(`Operation ${name} is not supported ${system ? 'at system level' : `${id ? 'on an instance of' : 'on'} ${type}`}`);
  }
  if (!handler.methods.includes(req.method)) {
    throw methodNotAllowed(`${name} is called with ${handler.methods.join(' or ')}`);
  }
  if (!system) service.checkType(type);
  return handler.run(service, { type, id, body: req.body, method: req.method, query: req.query as Record<string, unknown>, headers: req.headers, caller: req.res?.locals.principal as Principal | undefined });
}
