// The reviewer's recommendation to see the patient (profiles/StructureDefinition-follow-up.json): read
// from an opinion for its rendering and for the proposed ServiceRequest written back to the hospital.
import type { Coding, DiagnosticReport } from '@medplum/fhirtypes';
import type { Conformance } from '../conformance/artifacts.js';

export interface FollowUp {
  /** In person or by video, with the display of profiles/CodeSystem-follow-up.json. */
  kind: Coding;
  reason?: string;
}

/** The opinion's follow-up, if the reviewer recommends one. */
export function followUpOf(report: DiagnosticReport, conformance: Conformance): FollowUp | undefined {
  const extension = report.extension?.find((e) => e.url === `${conformance.canonical}/StructureDefinition/follow-up`);
  const kind = extension?.extension?.find((e) => e.url === 'kind')?.valueCoding;
  if (!kind?.code) return undefined;
  const display = conformance.codeSystems.get(kind.system ?? '')?.concept?.find((c) => c.code === kind.code)?.display;
  const reason = extension?.extension?.find((e) => e.url === 'reason')?.valueString?.trim();
  return { kind: { ...kind, ...(display ? { display } : {}) }, ...(reason ? { reason } : {}) };
}
