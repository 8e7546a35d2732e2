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
  return new FhirError(
    status,
    outcomeOf([{ severity: 'error', code, details: { text }, ...(expression ? { expression: [expression] } : {}) }]),
  );
}

export const badRequest = (text: string, expression?: string): FhirError => fail(400, 'invalid', text, expression);
export const notFound = (text: string, expression?: string): FhirError => fail(404, 'not-found', text, expression);
export const forbidden = (text: string, expression?: string): FhirError => fail(403, 'forbidden', text, expression);
export const gone = (text: string): FhirError => fail(410, 'deleted', text);
export const methodNotAllowed = (text: string): FhirError => fail(405, 'not-supported', text);
export const conflict = (text: string, expression?: string): FhirError => fail(409, 'conflict', text, expression);
export const preconditionFailed = (text: string): FhirError => fail(412, 'conflict', text);
export const payloadTooLarge = (text: string): FhirError => fail(413, 'too-costly', text);
export const unsupportedMediaType = (text: string): FhirError => fail(415, 'not-supported', text);
export const notAcceptable = (text: string): FhirError => fail(406, 'not-supported', text);

/** 422: the resource parsed but breaks the rules; issues name the offending elements. */
export function unprocessable(issues: OperationOutcomeIssue[]): FhirError {
  return new FhirError(422, outcomeOf(issues));
}

export function informational(text: string): OperationOutcome {
  return outcomeOf([{ severity: 'information', code: 'informational', details: { text } }]);
}
