// The structure validators the build compiles (src/validation/precompiled.ts) are the ones the
// service uses, and they judge exactly as the schema compiled at run time does: the same first
// issue, at the same element, for valid records, for each kind of structural error, and inside
// contained resources.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { defaultProfilesDir, loadConformance } from '../src/conformance/artifacts.js';
import { storedResourceTypes } from '../src/base/resource-types.js';
import { loadPrecompiled } from '../src/validation/precompiled.js';
import { StructureValidator } from '../src/validation/structure.js';
import { ResourceValidator } from '../src/validation/validator.js';

const examples = (kind: string): unknown[] =>
  readdirSync(path.join(defaultProfilesDir(), 'examples', kind))
    .filter((f) => f.endsWith('.json') && f !== 'expected.json')
    .map((f) => JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', kind, f), 'utf8')));

const broken: unknown[] = [
  { resourceType: 'Observation', status: 'final', code: { text: 'Hb' }, valueQuantity: { value: '12' } },
  { resourceType: 'Observation', status: 'final', code: { text: 'Hb' }, note: [] },
  { resourceType: 'Task', status: 'received', intent: 'order', priority: null },
  { resourceType: 'Provenance', target: [{ reference: 'Patient/1' }], recorded: 'yesterday', agent: [{ who: { display: 'x' } }] },
  { resourceType: 'Condition', subject: { reference: 'Patient/1' }, colour: 'red' },
  {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/1' },
    contained: [{ resourceType: 'Condition', subject: { reference: 'Patient/1' }, onsetAge: { value: 'old' } }],
  },
  { resourceType: 'NoSuchType' },
];

describe('structure validators compiled at build time', () => {
  it('are built for every stored type and used by the service', () => {
    const built = loadPrecompiled();
    expect(built).toBeDefined();
    expect(storedResourceTypes.filter((t) => !built?.validators.has(t))).toEqual([]);
  });

  it('give the same verdict as the schema compiled at run time', () => {
    const precompiled = new StructureValidator();
    const runtime = new StructureValidator(false, false);
    const records = [...examples('valid'), ...examples('invalid'), ...broken];
    for (const record of records) {
      expect(precompiled.validate(record)).toEqual(runtime.validate(record));
    }
    // Both refuse what is broken, each at the offending element.
    expect(broken.map((r) => precompiled.validate(r)[0]?.expression?.[0])).toEqual([
      'Observation.valueQuantity.value',
      'Observation.note',
      'Task.priority',
      'Provenance.recorded',
      'Condition.colour',
      'ServiceRequest.contained[0].onsetAge.value',
      'resourceType',
    ]);
  });
});

describe('definitions read at start', () => {
  it("are the stored types'; a contained resource of another type is still checked against FHIR's definition of it", () => {
    const validator = new ResourceValidator(loadConformance());
    const order = {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      subject: { reference: 'Patient/1' },
      medicationReference: { reference: '#m' },
      contained: [{ resourceType: 'Medication', id: 'm', ingredient: [{ strength: { numerator: { value: 1 } } }] }],
    };
    expect(validator.validate(order).map((i) => i.expression?.[0])).toEqual(['MedicationRequest.contained[0].ingredient[0].item[x]']);
  });
});
