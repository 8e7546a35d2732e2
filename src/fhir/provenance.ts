// A Provenance of a write (FHIR's v3-DataOperation activity: CREATE or UPDATE) with what it was about:
// the one shape of the service's records of who made which version (a Task's version, an opinion's
// signature, the chart retrieval).
import type { Provenance, ProvenanceAgent } from '@medplum/fhirtypes';

const dataOperation = 'http://terminology.hl7.org/CodeSystem/v3-DataOperation';
const participantType = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type';

export interface WriteRecord extends Omit<Provenance, 'resourceType' | 'target' | 'activity' | 'text'> {
  /** The versions written, as references. */
  target: string[];
  operation: 'CREATE' | 'UPDATE';
  /** What the write did, for a reader (the activity's text). */
  text: string;
  /** The operation's display, where the code alone says too little (a retrieval revises the chart). */
  display?: string;
}

export function provenanceOfWrite({ target, operation, text, display, ...rest }: WriteRecord): Provenance {
  return {
    resourceType: 'Provenance',
    ...rest,
    target: target.map((reference) => ({ reference })),
    activity: { coding: [{ system: dataOperation, code: operation, ...(display ? { display } : {}) }], text },
  };
}

/** An agent in a role of provenance-participant-type (author, verifier). */
export function agentAs(role: 'author' | 'verifier', agent: Omit<ProvenanceAgent, 'type'>): ProvenanceAgent {
  return { type: { coding: [{ system: participantType, code: role }] }, ...agent };
}
