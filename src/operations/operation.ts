// What an operation is to the router: its code (the OperationDefinition's, in profiles/), the HTTP
// methods it answers, and a handler that gets the call with the definition already loaded.
import type { IncomingHttpHeaders } from 'node:http';
import type { OperationDefinition } from '@medplum/fhirtypes';
import type { Gate } from '../access/gate.js';
import type { FhirService, Reply } from '../fhir/interactions.js';

export interface Invocation {
  service: FhirService;
  /** The operation's OperationDefinition from profiles/: its parameters, levels and types. */
  definition: OperationDefinition;
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

export interface Operation {
  /** The code of its OperationDefinition in profiles/ (`OperationDefinition-{code}.json`). */
  code: string;
  methods: readonly string[];
  run(call: Invocation): Promise<Reply>;
}

/** An operation with the OperationDefinition it was loaded with: what the router dispatches to. */
export interface LoadedOperation extends Operation {
  definition: OperationDefinition;
}
