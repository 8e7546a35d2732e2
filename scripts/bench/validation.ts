// Benchmark: validation throughput of the two-layer validator against @medplum/core's validateResource
// alone and against ajv compiled on the whole R4 JSON schema, side by side on one corpus of valid and
// invalid resources, with identical verdicts required. Run: npm run bench [-- --runs 7 --size 2000]
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { defaultProfilesDir, loadConformance } from '../../src/conformance/artifacts.js';
import { StructureValidator } from '../../src/validation/structure.js';
import { ResourceValidator } from '../../src/validation/validator.js';
import { markdownTable, median, option } from './report.js';

const runs = option('runs', 5);
const size = option('size', 1200);

interface Contender {
  name: string;
  valid(resource: Resource): boolean;
}

const conformance = loadConformance();
const twoLayer = new ResourceValidator(conformance);
const perType = new StructureValidator();
process.stdout.write('compiling the whole R4 schema with ajv (the 187-way oneOf)...\n');
let started = performance.now();
const whole = new StructureValidator(true);
whole.validate({ resourceType: 'Patient' });
process.stdout.write(`  compiled in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);

const contenders: Contender[] = [
  { name: 'two-layer (ajv per type + profile)', valid: (r) => twoLayer.validate(r).length === 0 },
  { name: 'structural layer alone (ajv per type)', valid: (r) => perType.validate(r).length === 0 },
  { name: 'ajv, whole R4 schema', valid: (r) => whole.validate(r).length === 0 },
  {
    name: '@medplum/core validateResource alone',
    valid: (r) => {
      const profiles = twoLayer.profiles.profilesFor(r);
      try {
        return (profiles ?? [undefined]).every((profile) => validateResource(r, profile ? { profile } : undefined).every((i) => i.severity !== 'error'));
      } catch (err) {
        if (err instanceof OperationOutcomeError) return false;
        throw err;
      }
    },
  },
];

const corpus = buildCorpus(size);
const invalidCount = corpus.filter((c) => !c.valid).length;
process.stdout.write(`corpus: ${corpus.length} resources (${corpus.length - invalidCount} valid, ${invalidCount} invalid), ${runs} runs each\n`);

// Verdicts first: every contender must agree with the corpus's label on every resource.
for (const contender of contenders) {
  for (const item of corpus) {
    const verdict = contender.valid(item.resource);
    if (verdict !== item.valid) {
      throw new Error(`${contender.name} says ${verdict ? 'valid' : 'invalid'} for ${item.label}, expected ${item.valid ? 'valid' : 'invalid'}`);
    }
  }
}
const compared = corpus.map((c) => c.resource);
process.stdout.write(`verdicts: identical across all four on ${compared.length} resources\n\n`);

const results = contenders.map((contender) => {
  const rates: number[] = [];
  for (let run = 0; run < runs + 1; run++) {
    started = performance.now();
    for (const resource of compared) contender.valid(resource);
    const seconds = (performance.now() - started) / 1000;
    if (run > 0) rates.push(compared.length / seconds); // the first run warms up
  }
  return { name: contender.name, rate: median(rates) };
});

const rateOf = (name: string): number => results.find((r) => r.name.startsWith(name))?.rate ?? NaN;
const wholeRate = rateOf('ajv, whole');
const medplumRate = rateOf('@medplum');
const rows = results.map((r) => [
  r.name,
  Math.round(r.rate).toLocaleString('en-US'),
  `${(r.rate / wholeRate).toFixed(1)}x`,
  `${(r.rate / medplumRate).toFixed(2)}x`,
]);
const header = ['validator', 'resources/s (median)', 'vs whole-schema ajv', 'vs validateResource'];
process.stdout.write(`${markdownTable(header, rows)}\n`);
const structuralSpeedup = rateOf('structural') / wholeRate;
const twoLayerRatio = rateOf('two-layer') / medplumRate;
process.stdout.write(
  `\nstructural layer vs whole-schema ajv: ${structuralSpeedup.toFixed(1)}x (target >= 10x): ${structuralSpeedup >= 10 ? 'met' : 'NOT met'}\n` +
    `two-layer vs validateResource alone: ${twoLayerRatio.toFixed(2)}x (target >= 1.00x): ${twoLayerRatio >= 1 ? 'met' : 'NOT met'}\n`,
);

interface CorpusItem {
  resource: Resource;
  valid: boolean;
  label: string;
}

/** Valid resources of every stored kind (the profiles' examples among them) and broken copies of them. */
function buildCorpus(target: number): CorpusItem[] {
  const examples = path.join(defaultProfilesDir(), 'examples');
  const valid = readdirSync(path.join(examples, 'valid')).map((f) => JSON.parse(readFileSync(path.join(examples, 'valid', f), 'utf8')) as Resource);
  const seeds: Resource[] = [...valid, ...clinicalSeeds()];
  const mutations: [string, (r: Record<string, unknown>) => void][] = [
    ['unknown element', (r) => (r.colour = 'blue')],
    ['malformed instant', (r) => (r.meta = { lastUpdated: 'yesterday' })],
    ['object where a list belongs', (r) => (r.identifier = { value: 'x' })],
    ['number where a string belongs', (r) => (r.language = 42)],
    ['misspelt element in a nested Coding', (r) => (r.meta = { tag: [{ sytem: 'urn:test', code: 'x' }] })],
  ];
  const items: CorpusItem[] = [];
  for (let i = 0; items.length < target; i++) {
    const seed = structuredClone(seeds[i % seeds.length]) as unknown as Record<string, unknown>;
    seed.id = `bench-${i}`;
    if (i % 2 === 0) {
      items.push({ resource: seed as unknown as Resource, valid: true, label: `${seed.resourceType} #${i}` });
    } else {
      const [name, mutate] = mutations[Math.floor(i / 2) % mutations.length];
      mutate(seed);
      items.push({ resource: seed as unknown as Resource, valid: false, label: `${seed.resourceType} #${i} (${name})` });
    }
  }
  return items;
}

function clinicalSeeds(): Resource[] {
  const subject = { reference: 'Patient/bench-patient' };
  const coding = (system: string, code: string, display: string) => ({ coding: [{ system, code, display }], text: display });
  return [
    {
      resourceType: 'Patient',
      identifier: [{ system: 'urn:oid:1.2.3', value: 'MRN-1' }],
      name: [{ family: 'Doe', given: ['Jan'] }],
      gender: 'female',
      birthDate: '1968-05-21',
      address: [{ city: 'Springfield', country: 'US' }],
    },
    {
      resourceType: 'Condition',
      clinicalStatus: coding('http://terminology.hl7.org/CodeSystem/condition-clinical', 'active', 'Active'),
      code: coding('http://hl7.org/fhir/sid/icd-10-cm', 'C50.911', 'Malignant neoplasm of right female breast'),
      subject,
      onsetDateTime: '2026-06-01',
    },
    {
      resourceType: 'Observation',
      status: 'final',
      category: [coding('http://terminology.hl7.org/CodeSystem/observation-category', 'laboratory', 'Laboratory')],
      code: coding('http://loinc.org', '48676-1', 'HER2'),
      subject,
      effectiveDateTime: '2026-06-03T10:00:00Z',
      valueString: 'Positive (3+)',
    },
    {
      resourceType: 'Procedure',
      status: 'completed',
      code: coding('http://snomed.info/sct', '237372003', 'Core needle biopsy of breast'),
      subject,
      performedDateTime: '2026-05-30',
    },
    {
      resourceType: 'MedicationRequest',
      status: 'active',
      intent: 'order',
      medicationCodeableConcept: coding('http://www.nlm.nih.gov/research/umls/rxnorm', '224905', 'trastuzumab'),
      subject,
      authoredOn: '2026-06-10',
    },
    {
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject,
      period: { start: '2026-06-01T09:00:00Z', end: '2026-06-01T09:30:00Z' },
    },
    {
      resourceType: 'AllergyIntolerance',
      clinicalStatus: coding('http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', 'active', 'Active'),
      patient: subject,
      code: coding('http://snomed.info/sct', '91936005', 'Penicillin allergy'),
    },
    {
      resourceType: 'DocumentReference',
      status: 'current',
      subject,
      content: [{ attachment: { contentType: 'application/pdf', url: 'https://ehr.example/docs/1', title: 'Pathology report' } }],
    },
    { resourceType: 'Organization', name: 'Referring Hospital', identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4' }] },
    { resourceType: 'Practitioner', name: [{ family: 'Reviewer', prefix: ['Dr.'] }], qualification: [{ code: { text: 'MD' } }] },
  ] as Resource[];
}
