// The search index a record is stored with is the same whether a parameter's values are read by a
// compiled path or by FHIRPath: every parameter of every stored type, over the profiles' examples, a
// synthetic chart and the shapes that trip a path reader (choice types, absolute and typed references,
// contained targets, primitives with only an extension).
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { evalFhirPathTyped, toTypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { MemoryRepository } from '@medplum/fhir-router';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { storedResourceTypes } from '../src/base/resource-types.js';
import { compileExtractor } from '../src/store/search/extractors.js';
import { supportedParameters } from '../src/store/search/parameters.js';
import { chartTypes } from '../src/retrieval/retrieve-chart.js';
import { seedPatient } from '../scripts/peer/referring-ehr.js';

const subject = { reference: 'http://ehr.example/fhir/Patient/p1' };
const awkward: Resource[] = [
  {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    subject,
    occurrencePeriod: { start: '2026-01-01' },
    performerType: { text: 'x' },
    requester: { type: 'Practitioner', identifier: { system: 'urn:npi', value: '1' } },
  },
  {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/p2' },
    occurrenceTiming: { event: ['2026-02-01'] },
    _status: { extension: [{ url: 'urn:x', valueString: 'y' }] },
  } as Resource,
  { resourceType: 'CommunicationRequest', status: 'active', subject: { reference: 'Group/g1' }, occurrencePeriod: { start: '2026-01-01' } },
  {
    resourceType: 'CommunicationRequest',
    status: 'active',
    subject: { reference: '#p' },
    contained: [{ resourceType: 'Patient', id: 'p' }],
    occurrenceDateTime: '2026-03-04T10:00:00Z',
  },
  {
    resourceType: 'AuditEvent',
    type: { code: 'rest' },
    recorded: '2026-01-01T00:00:00Z',
    agent: [
      { who: { reference: 'Patient/p3' }, requestor: false },
      { who: { reference: 'Practitioner/x' }, requestor: true, altId: 'a' },
    ],
    source: { observer: { display: 'x' } },
    entity: [{ what: { reference: 'Patient?identifier=urn:mrn|1' } }],
  },
  {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    for: { reference: 'Patient/p4', resource: { resourceType: 'Group' } } as never,
    executionPeriod: { end: '2026-05-01' },
    businessStatus: { text: 'x' },
  },
  { resourceType: 'Organization', name: 'A', alias: ['B', 'C'], active: true },
  { resourceType: 'Practitioner', name: [{ family: 'F', given: ['G', 'H'] }, { text: 'T' }] },
  {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    subject,
    medicationReference: { reference: 'Medication/m' },
    dosageInstruction: [{ timing: { event: ['2026-01-01', '2026-01-02'] } }],
  },
  {
    resourceType: 'Encounter',
    status: 'finished',
    class: { code: 'AMB' },
    participant: [{ individual: { reference: 'Practitioner/d' } }, { individual: { reference: 'RelatedPerson/r' } }],
  },
  {
    resourceType: 'ImagingStudy',
    status: 'available',
    subject,
    series: [{ uid: '1', modality: { code: 'CT' }, endpoint: [{ reference: 'Endpoint/e' }], performer: [{ actor: { reference: 'Practitioner/d' } }] }],
  },
];

async function corpus(): Promise<Resource[]> {
  const dir = path.join(defaultProfilesDir(), 'examples', 'valid');
  const examples = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Resource);
  const repo = new MemoryRepository();
  await seedPatient(repo, 2);
  const chart = (await Promise.all(['Patient', ...chartTypes].map((t) => repo.searchResources({ resourceType: t as never })))).flat() as Resource[];
  return [...examples, ...chart, ...awkward];
}

describe('a search parameter read by a compiled path', () => {
  it('selects what FHIRPath selects, for every parameter of every stored type', async () => {
    const resources = await corpus();
    let compiled = 0;
    let all = 0;
    for (const type of storedResourceTypes) {
      for (const param of supportedParameters(type).values()) {
        all++;
        const extract = compileExtractor(type, param.definition.expression ?? '');
        if (!extract) continue;
        compiled++;
        for (const resource of resources.filter((r) => r.resourceType === type)) {
          const byFhirPath = evalFhirPathTyped(param.expression, [toTypedValue(resource)])
            .map((v) => v.value)
            .filter((v) => v !== undefined);
          expect({ type, code: param.code, id: resource.id, values: extract(resource) }).toEqual({
            type,
            code: param.code,
            id: resource.id,
            values: byFhirPath,
          });
        }
      }
    }
    // Nearly every R4 parameter is a path; the rest are left to FHIRPath.
    expect(compiled / all).toBeGreaterThan(0.9);
  });
});
