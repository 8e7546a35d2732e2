// Which specialty reviews a case: the one the request asks for (ServiceRequest.performerType), or else
// those its diagnoses map to through the ConceptMap in profiles/ (ICD-10-CM by category, SNOMED CT by code).
import { conceptMapTranslate } from '@medplum/core';
import type { Coding, ConceptMap, ServiceRequest } from '@medplum/fhirtypes';

const icd10cm = 'http://hl7.org/fhir/sid/icd-10-cm';

export class Specialties {
  constructor(private readonly diagnosisToSpecialty: ConceptMap) {}

  /** The specialty codings a reviewer of this request needs one of; [] when none can be told. */
  wantedBy(request: ServiceRequest): Coding[] {
    const asked = request.performerType?.coding?.filter((c) => c.code) ?? [];
    if (asked.length) return unique(asked.map(({ system, code }) => ({ system, code })));
    return unique((request.reasonCode ?? []).flatMap((reason) => reason.coding ?? []).flatMap((coding) => this.forDiagnosis(coding)));
  }

  /** The specialties the most specific mapped level of the diagnosis code maps to. */
  private forDiagnosis(coding: Coding): Coding[] {
    if (!coding.code || !coding.system) return [];
    for (const code of coding.system === icd10cm ? icd10Ancestry(coding.code) : [coding.code]) {
      const { match } = conceptMapTranslate(this.diagnosisToSpecialty, { coding: { system: coding.system, code } });
      if (match?.length) return match.map((m) => ({ system: m.concept?.system, code: m.concept?.code }));
    }
    return [];
  }
}

/** An ICD-10-CM code and the codes above it, most specific first: C50.911, C50.91, C50.9, C50. */
export function icd10Ancestry(code: string): string[] {
  const codes = [code];
  for (let c = code; c.replace('.', '').length > 3;) {
    c = c.slice(0, -1).replace(/\.$/, '');
    codes.push(c);
  }
  return codes;
}

function unique(codings: Coding[]): Coding[] {
  return [...new Map(codings.map((c) => [`${c.system ?? ''}|${c.code}`, c])).values()];
}
