// FHIR errors: every failure leaves the service as an OperationOutcome with an HTTP status.
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly outcome: OperationOutcome,
  ) {
    super(outcome.issue?.map((i) => i.details?.text ?? i.code).join('; ') ?? 'FHIR error');
  }
}

export function outcomeOf(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

function fail(status: number, code: OperationOutcomeIssue['code'], text: string, expression?: string): FhirError {
  return new FhirError(status, outcomeOf([{ severity: 'error', code, details: { text }, ...(expression ? { expression: [expression] } : {}) }]));
}

export const badRequest = (text: string, expression?: string): FhirError => fail(400, 'invalid', text, expression);
export const notFound = (text: string, expression?: string): FhirError => fail(404, 'not-found', text, expression);
export const forbidden = (text: string, expression?: string): FhirError => fail(403, 'forbidden', text, expression);
/**
 * 404 for a record (or a version of one) that is not there, or is not the caller's to see: one answer
 * for both, that does not repeat the id, so that comparing answers tells nothing.
 */
export const notKnown = (type: string, version?: 'version'): FhirError =>
  notFound(version ? `This version of the ${type} is not known` : `This ${type} is not known`);
export const gone = (text: string): FhirError => fail(410, 'deleted', text);
export const methodNotAllowed = (text: string): FhirError => fail(405, 'not-supported', text);
export const conflict = (text: string, expression?: string): FhirError => fail(409, 'conflict', text, expression);
export const preconditionFailed = (text: string): FhirError => fail(412, 'conflict', text);
export const payloadTooLarge = (text: string): FhirError => fail(413, 'too-costly', text);
export const unsupportedMediaType = (text: string): FhirError => fail(415, 'not-supported', text);
export const notAcceptable = (text: string, expression?: string): FhirError => fail(406, 'not-supported', text, expression);

/** 422: the resource parsed but breaks the rules; issues name the offending elements. */
export function unprocessable(issues: OperationOutcomeIssue[]): FhirError {
  return new FhirError(422, outcomeOf(issues));
}

/** 422: a rule of the workflow refuses the write; `expression` names the element that breaks it. */
export const businessRule = (text: string, expression: string): FhirError =>
  unprocessable([{ severity: 'error', code: 'business-rule', details: { text }, expression: [expression] }]);

/** 422: a reference names a record that is not here. */
export const unknownReference = (text: string, expression: string): FhirError =>
  unprocessable([{ severity: 'error', code: 'not-found', details: { text }, expression: [expression] }]);

export function informational(text: string): OperationOutcome {
  return outcomeOf([{ severity: 'information', code: 'informational', details: { text } }]);
}
