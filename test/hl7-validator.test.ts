// The HL7 validator (HAPI FHIR's, offline, with profiles/ loaded) as an independent oracle: what we
// publish in profiles/ and everything the service answers or writes into the EHR during the whole
// loop passes it, every invalid example fails it on the element it is about, the committed snapshots
// are the generator's, and the service's own validator agrees with it on every example and mutant.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canonicalBase, loadConformance } from '../src/conformance/artifacts.js';
import { ResourceValidator } from '../src/validation/validator.js';
import { errorsOf, Hl7Validator, profilesDir, type Hl7Issue, type Hl7Verdict } from '../scripts/validator/client.js';
import { staleSnapshots } from '../scripts/validator/snapshots.js';
import { seedAttachments, seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';
import { startTestService, type FhirInit, type TestService } from './harness.js';
import { businessStatus, createOrganization, icd10cm, openCase, reason, registerReviewer, secondOpinionRequest, specialty, taskWhen } from './review-cases.js';

const readJson = (file: string): any => JSON.parse(readFileSync(file, 'utf8'));
const jsonIn = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'package.json' && f !== 'expected.json')
    .sort()
    .map((f) => path.join(dir, f));
const artifacts = jsonIn(profilesDir);
const valid = jsonIn(path.join(profilesDir, 'examples', 'valid'));
const invalid = jsonIn(path.join(profilesDir, 'examples', 'invalid'));
const expected: Record<string, { expression: string }> = readJson(path.join(profilesDir, 'examples', 'invalid', 'expected.json'));
const canonical = readJson(path.join(profilesDir, 'package.json')).canonical as string;

let hl7: Hl7Validator;
beforeAll(async () => {
  hl7 = await Hl7Validator.start();
}, 180_000);
afterAll(async () => {
  await hl7?.stop();
});

/** `label: severity at location: message` for each error, to read in a failure. */
const listed = (label: string, errors: Hl7Issue[]): string[] => errors.map((e) => `${label}: ${e.severity} at ${e.location || '(resource)'}: ${e.message}`);

/** An error names the element when it is located at it, or at its parent with the element in its text. */
const names = (error: Hl7Issue, expression: string): boolean =>
  error.location.startsWith(expression) || (expression.startsWith(error.location) && error.message.includes(expression.split('.').pop() as string));

describe('profiles/ under the HL7 validator', () => {
  it('every conformance resource and every valid example: 0 errors', async () => {
    // The first StructureDefinitions make the validator build its snapshots: slow once.
    const verdicts = await Promise.all([...artifacts, ...valid].map((file) => hl7.validate(file)));
    const errors = verdicts.flatMap((v) => listed(path.relative(profilesDir, v.file), errorsOf(v)));
    console.log(`HL7 validator, profiles/: ${verdicts.length} files, ${errors.length} errors`);
    expect(errors).toEqual([]);
  }, 180_000);

  it('every invalid example fails, on the element its expectation names', async () => {
    const verdicts = await Promise.all(invalid.map((file) => hl7.validate(file)));
    const missed = verdicts.filter((v) => !errorsOf(v).some((e) => names(e, expected[path.basename(v.file)].expression)));
    console.log(`HL7 validator, invalid examples: ${verdicts.length - missed.length} of ${verdicts.length} caught`);
    expect(missed.map((v) => `${path.basename(v.file)}: ${JSON.stringify(errorsOf(v).map((e) => [e.location, e.message]))}`)).toEqual([]);
  });

  it("carries in each StructureDefinition the snapshot HL7's generator makes of its differential", async () => {
    expect(staleSnapshots(false, await hl7.snapshots())).toEqual([]);
  }, 120_000);
});

describe('the service validator and the HL7 validator', () => {
  const ours = new ResourceValidator(loadConformance());
  const disagreements: string[] = [];
  const compare = async (label: string, resource: object): Promise<void> => {
    const theirs = errorsOf(await hl7.validate(resource));
    const mine = ours.validate(resource);
    if (!theirs.length !== !mine.length) {
      disagreements.push(
        `${label}: HL7 ${theirs.length ? JSON.stringify(theirs.map((e) => [e.location, e.message])) : 'valid'}; service ${mine.length ? JSON.stringify(mine.map((i) => [i.expression?.[0], i.details?.text])) : 'valid'}`,
      );
    }
  };

  /** Changes of the kind a sender gets wrong, applied to a valid example. */
  const mutation = fc.oneof(
    fc
      .constantFrom(
        'status',
        'intent',
        'category',
        'subject',
        'for',
        'focus',
        'basedOn',
        'partOf',
        'payload',
        'identifier',
        'requester',
        'reasonCode',
        'conclusion',
        'code',
        'businessStatus',
        'extension',
      )
      .map((key) => ({ label: `without ${key}`, apply: (r: any) => delete r[key] })),
    fc
      .constantFrom('draft', 'final', 'completed', 'requested', 'in-progress', 'on-hold', 'cancelled', 'bogus')
      .map((status) => ({ label: `status ${status}`, apply: (r: any) => (r.status = status) })),
    fc
      .constantFrom('order', 'plan', 'proposal')
      .map((intent) => ({ label: `intent ${intent}`, apply: (r: any) => r.intent !== undefined && (r.intent = intent) })),
    fc.constantFrom('colour', 'note').map((key) => ({ label: `with ${key}`, apply: (r: any) => (r[key] = key === 'note' ? [{ text: 'a note' }] : 'red') })),
  );

  it('agree on every example and on mutants of the valid ones (0 disagreements)', async () => {
    for (const file of [...valid, ...invalid]) await compare(path.basename(file), readJson(file));
    const examples = valid.map((file) => ({ name: path.basename(file), resource: readJson(file) }));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...examples), fc.array(mutation, { minLength: 1, maxLength: 2 }), async (example, changes) => {
        const resource = structuredClone(example.resource);
        changes.forEach((c) => c.apply(resource));
        await compare(`${example.name} ${changes.map((c) => c.label).join(', ')}`, resource);
      }),
      { numRuns: 120, seed: 13 },
    );
    console.log(`HL7 validator vs the service's: ${valid.length + invalid.length} examples and 120 mutants, ${disagreements.length} disagreements`);
    expect(disagreements).toEqual([]);
  }, 120_000);
});

describe('what the service emits during the whole loop, under the HL7 validator', () => {
  let service: TestService;
  let ehr: ReferringEhr;
  let patientId: string;
  const emitted: [label: string, resource: any][] = [];

  /** A FHIR call whose answer, when it is a resource, is kept for the validator. */
  const call = async (route: string, init?: FhirInit) => {
    const response = await service.fhir(route, init);
    if (response.body?.resourceType) emitted.push([`${init?.method ?? (init?.body ? 'POST' : 'GET')} ${route}`, response.body]);
    return response;
  };

  beforeAll(async () => {
    ehr = await startReferringEhr();
    patientId = await seedPatient(ehr.repo, 2);
    await seedAttachments(ehr.repo, patientId, [2000]);
    service = await startTestService({ RETRIEVAL_POLL_MS: '100', DELIVERY_POLL_MS: '100' });
  }, 60_000);
  afterAll(async () => {
    await service?.stop();
    await ehr?.stop();
  });

  it('answers and writes nothing the HL7 validator calls an error', async () => {
    const loopStart = new Date().toISOString();
    await call('/metadata');
    // The institution, registered with how to authenticate to its server (the endpoint-auth extension).
    const organization = await createOrganization(service, 'Referring Hospital');
    await call('/Endpoint', {
      body: {
        resourceType: 'Endpoint',
        status: 'active',
        address: ehr.base,
        managingOrganization: { reference: `Organization/${organization}` },
        connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
        payloadType: [{ text: 'FHIR R4' }],
        extension: [{ url: `${canonical}/StructureDefinition/endpoint-auth`, extension: [{ url: 'mode', valueCode: 'none' }] }],
      },
    });
    const reviewer = await registerReviewer(service, {
      name: 'Oncologist',
      organizationId: await createOrganization(service, 'Second Opinion Centre'),
      specialty: specialty.oncology,
      capacity: 3,
    });
    const headers = { 'x-provenance': JSON.stringify({ resourceType: 'Provenance', agent: [{ who: { reference: `PractitionerRole/${reviewer}` } }] }) };

    // The EHR asks twice: a pushed request, and one read from its own server by $submit.
    const { supportingInfo: _none, ...pushed } = secondOpinionRequest('HL7-1', ehr.base, patientId, {
      performerType: undefined,
      ...reason(icd10cm, 'C50.911'),
    });
    const routed = await openCase(service, pushed);
    expect(businessStatus(routed)).toBe('assigned');
    const requestId = routed.focus.reference.split('/')[1];
    const { meta: _meta, supportingInfo: _empty, ...example } = secondOpinionRequest('HL7-2', ehr.base, patientId) as any;
    const remote = await ehr.repo.createResource({ ...example, subject: { reference: `Patient/${patientId}` } });
    const submitted = await call('/ServiceRequest/$submit', {
      body: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'institution', valueReference: { reference: `Organization/${organization}` } },
          { name: 'serviceRequestId', valueString: remote.id },
        ],
      },
    });
    expect(submitted.status).toBe(201);
    await call(`/${submitted.body.focus.reference}`);
    const retrieved = await taskWhen(service, routed.id, (t) => businessStatus(t) !== 'records-retrieving');
    expect(businessStatus(retrieved)).toBe('assigned');
    await call(`/ServiceRequest/${requestId}/$case-packet`);

    // Review: a question to the referrer, its answer, the opinion; the write-back into the chart.
    const accepted = await call(`/Task/${routed.id}`, { method: 'PUT', body: { ...routed, status: 'accepted' }, headers });
    await call(`/Task/${routed.id}`, { method: 'PUT', body: { ...accepted.body, status: 'in-progress' }, headers });
    const request = (await call(`/ServiceRequest/${requestId}`)).body;
    const question = await call('/CommunicationRequest', {
      body: {
        resourceType: 'CommunicationRequest',
        status: 'active',
        subject: routed.for,
        basedOn: [{ reference: `ServiceRequest/${requestId}` }],
        requester: { reference: `PractitionerRole/${reviewer}` },
        recipient: [request.requester],
        payload: [{ contentString: 'Was ISH done on the biopsy?' }],
      },
      headers,
    });
    expect(question.status).toBe(201);
    await taskWhen(service, routed.id, (t) => t.status === 'on-hold');
    await call('/Communication', {
      body: {
        resourceType: 'Communication',
        status: 'completed',
        subject: routed.for,
        basedOn: [{ reference: `CommunicationRequest/${question.body.id}` }],
        sender: request.requester,
        recipient: [{ reference: `PractitionerRole/${reviewer}` }],
        sent: new Date().toISOString(),
        payload: [{ contentString: 'No; blocks can be sent.' }],
      },
    });
    await taskWhen(service, routed.id, (t) => t.status === 'in-progress');
    const finalExample = readJson(path.join(profilesDir, 'examples', 'valid', 'DiagnosticReport-final-concordant.json'));
    const opinion = await call('/DiagnosticReport', {
      body: {
        ...finalExample,
        subject: routed.for,
        basedOn: [{ reference: `ServiceRequest/${requestId}` }],
        conclusion: 'HER2 positive on ISH: add trastuzumab.',
        // A recommendation to see the patient: written to the EHR as a proposed ServiceRequest, validated below.
        extension: [
          ...finalExample.extension,
          {
            url: `${canonicalBase()}/StructureDefinition/follow-up`,
            extension: [
              { url: 'kind', valueCoding: { system: `${canonicalBase()}/CodeSystem/follow-up`, code: 'video' } },
              { url: 'reason', valueString: 'to discuss HER2-targeted therapy' },
            ],
          },
        ],
      },
      headers,
    });
    expect(opinion.status).toBe(201);
    const done = await taskWhen(service, routed.id, (t) => ['opinion-delivered', 'delivery-failed'].includes(businessStatus(t) ?? ''));
    expect(businessStatus(done)).toBe('opinion-delivered');

    // What a referrer, a reviewer and an analyst read afterwards.
    for (const route of [
      `/Task/${routed.id}`,
      `/Task/${routed.id}/_history`,
      `/Task?focus=ServiceRequest/${requestId}`,
      `/DiagnosticReport/${opinion.body.id}/$verify`,
      `/Provenance?target=DiagnosticReport/${opinion.body.id}`,
      `/Provenance?_count=50`,
      `/Communication?based-on=ServiceRequest/${requestId}&_sort=sent`,
      `/CommunicationRequest?subject=${routed.for.reference}`,
      '/Task?_id=no-such-task',
      '/Endpoint',
      '/Measure/opinion-concordance',
      ...['opinion-concordance', 'opinion-turnaround', 'case-backlog', 'information-requests'].map(
        (m) => `/Measure/${m}/$evaluate-measure?periodStart=${loopStart.slice(0, 7)}&periodEnd=${loopStart.slice(0, 7)}`,
      ),
    ]) {
      expect((await call(route)).status).toBe(200);
    }

    // What the service wrote into the EHR: every record there changed since the loop began, as stored
    // (the EHR's own bookkeeping in meta set aside).
    for (const type of ['DiagnosticReport', 'Provenance', 'Communication', 'CommunicationRequest', 'ServiceRequest', 'Task'] as const) {
      for (const record of await ehr.repo.searchResources({ resourceType: type, count: 1000 })) {
        if ((record.meta?.lastUpdated ?? '') < loopStart || record.id === remote.id) continue;
        const { meta, ...rest } = record as any;
        emitted.push([`written to the EHR: ${type}/${record.id}`, { ...rest, ...(meta?.profile ? { meta: { profile: meta.profile } } : {}) }]);
      }
    }
    expect(emitted.filter(([label]) => label.startsWith('written to the EHR: DiagnosticReport')).length).toBe(1);
    expect(emitted.filter(([label, r]) => label.startsWith('written to the EHR: ServiceRequest') && r.intent === 'proposal').length).toBe(1);

    const verdicts: [string, Hl7Verdict][] = [];
    for (const [label, resource] of emitted) verdicts.push([label, await hl7.validate(resource)]);
    const errors = verdicts.flatMap(([label, v]) => listed(label, errorsOf(v)));
    console.log(`HL7 validator, emitted: ${verdicts.length} resources, ${errors.length} errors`);
    expect(errors).toEqual([]);
  }, 180_000);
});
