// De-identification of exported records: what names or reaches a person and free text are gone, ids
// and references become keyed pseudonyms (the same within one export, different across exports), and
// a patient's dates all move back by one offset, so that intervals between them are kept.
import { describe, expect, it } from '@jest/globals';
import type { Observation, Patient } from '@medplum/fhirtypes';
import { Deidentifier, deidentifiedLabels, shiftDate } from '../../src/export/deidentify.js';

const fhirBase = 'https://so.example/fhir';
const patient = (): Patient => ({
  resourceType: 'Patient',
  id: 'p1',
  meta: { versionId: '3', source: 'https://ehr.example/fhir/Patient/77', profile: ['https://so.example/StructureDefinition/x'] },
  text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Ada Lovelace</div>' },
  identifier: [{ system: 'urn:oid:1.2.3', value: 'MRN-1' }],
  name: [{ family: 'Lovelace', given: ['Ada'] }],
  telecom: [{ system: 'phone', value: '+44 20 0000 0000' }],
  address: [{ city: 'London' }],
  photo: [{ contentType: 'image/png', data: 'iVBORw0KGgo=' }],
  gender: 'female',
  birthDate: '1961-03-05',
});
const observation = (id: string, effective: string): Observation => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }], text: 'Hb, said by Dr Smith' },
  subject: { reference: 'Patient/p1', display: 'Ada Lovelace' },
  effectiveDateTime: effective,
  valueString: 'Patient reports fatigue since her son left',
  note: [{ text: 'Called Ada at home' }],
});
const days = (a: string, b: string): number => (Date.parse(a) - Date.parse(b)) / 86_400_000;

describe('a de-identified record', () => {
  const export1 = new Deidentifier(fhirBase);

  it('keeps nothing that names or reaches the patient, nor free text; a birth date keeps its year', () => {
    const out = export1.deidentify(patient()) as Patient;
    expect(Object.keys(out).sort()).toEqual(['birthDate', 'gender', 'id', 'meta', 'resourceType']);
    expect(out.birthDate).toBe('1961');
    expect(out.gender).toBe('female');
    expect(JSON.stringify(out)).not.toMatch(/Lovelace|MRN-1|London|ehr\.example|\+44/);
  });

  it('has a pseudonym for its id and says so in meta.security; its version and source are gone', () => {
    const out = export1.deidentify(patient());
    expect(out.id).toMatch(/^[0-9a-f]{32}$/);
    expect(out.id).toBe(export1.pseudonym('Patient', 'p1'));
    expect(out.meta).toEqual({ profile: ['https://so.example/StructureDefinition/x'], security: deidentifiedLabels });
  });

  it('points at the same pseudonym its patient got; coded meaning stays, text does not', () => {
    const out = export1.deidentify(observation('o1', '2026-03-05T10:00:00Z')) as Observation;
    expect(out.subject).toEqual({ reference: `Patient/${export1.pseudonym('Patient', 'p1')}` });
    expect(out.code).toEqual({ coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }] });
    expect(out.valueString).toBeUndefined();
    expect(out.note).toBeUndefined();
  });

  it("moves a patient's dates back by one offset of 1 to 365 days, keeping the time between them", () => {
    const [a, b] = [
      export1.deidentify(observation('o1', '2026-03-05T10:00:00Z')) as Observation,
      export1.deidentify(observation('o2', '2026-03-15T10:00:00Z')) as Observation,
    ];
    const shift = days('2026-03-05T10:00:00Z', a.effectiveDateTime as string);
    expect(shift).toBeGreaterThanOrEqual(1);
    expect(shift).toBeLessThanOrEqual(365);
    expect(days(b.effectiveDateTime as string, a.effectiveDateTime as string)).toBe(10);
  });

  it('another export gives other pseudonyms, so exports cannot be joined', () => {
    const export2 = new Deidentifier(fhirBase);
    expect(export2.deidentify(patient()).id).not.toBe(export1.deidentify(patient()).id);
  });

  it('a reference to this server by its absolute URL gets the same pseudonym as a relative one', () => {
    const out = export1.deidentify({ ...observation('o3', '2026-01-01'), subject: { reference: `${fhirBase}/Patient/p1` } }) as Observation;
    expect(out.subject?.reference).toBe(`Patient/${export1.pseudonym('Patient', 'p1')}`);
  });
});

describe('moving a date back', () => {
  it.each([
    ['2026-03-05', 10, '2026-02-23'],
    ['2026-03-05T10:15:00+02:00', 10, '2026-02-23T10:15:00+02:00'],
    ['2026-03', 10, '2026-02'],
    ['2026', 10, '2025'],
    ['2024-03-01', 1, '2024-02-29'],
  ])('%s, %i days back, is %s at the same precision', (value, by, expected) => {
    expect(shiftDate(value, by)).toBe(expected);
  });
});
