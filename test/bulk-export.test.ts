// Bulk Data export as an analyst or a coordinator uses it: kick off, poll the status URL, read the
// manifest and the NDJSON files; de-identified by default, identified only for the roles allowed it;
// a Patient-level export holds every patient's records, a Group's only its members'; cancel; errors as OperationOutcomes.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mongoose from 'mongoose';
import { startTestService, type TestService } from './harness.js';

let service: TestService;
let analyst: string;
let coordinator: string;
/** Ids of the seeded patients, by label, and what each has. */
const patients: Record<string, { id: string; records: string[] }> = {};
let group: string;
let beforeLast: string;

/** Strings that name or reach a patient, or are free text: none may leave in a de-identified export. */
const secrets = [
  'Doe',
  'Roe',
  'Poe',
  'Jane',
  'MRN-',
  '12 Main Street',
  'Springfield',
  '+1-555-0100',
  'jane@example.org',
  'Emergency Contact',
  'narrative of',
  'Patient says',
  'breathless since',
  'Conclusion for',
  'Letter for',
  'https://files.example/letter',
  'Reported by',
  'Dr Who',
];

function patientBody(family: string, birthDate: string) {
  return {
    resourceType: 'Patient',
    text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">narrative of ${family}</div>` },
    identifier: [{ system: 'https://ehr.example/mrn', value: `MRN-${family}` }],
    name: [{ family, given: ['Jane'] }],
    telecom: [
      { system: 'phone', value: '+1-555-0100' },
      { system: 'email', value: 'jane@example.org' },
    ],
    gender: 'female',
    birthDate,
    address: [{ line: ['12 Main Street'], city: 'Springfield', postalCode: '12345' }],
    photo: [{ contentType: 'image/png', data: 'iVBORw0KGgo=' }],
    contact: [{ name: { family: 'Emergency Contact' }, telecom: [{ system: 'phone', value: '+1-555-0100' }] }],
    generalPractitioner: [{ reference: 'Practitioner/unknown-gp', display: 'Dr Who' }],
  };
}

async function seedPatient(label: string, family: string, birthDate: string): Promise<void> {
  const created = await service.fhir('/Patient', { body: patientBody(family, birthDate) });
  expect(created.status).toBe(201);
  const subject = { reference: `Patient/${created.body.id}`, display: `Jane ${family}` };
  const records = [
    {
      resourceType: 'Observation',
      status: 'final',
      subject,
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }], text: `Heart rate of ${family}` },
      effectiveDateTime: '2024-03-10T10:00:00Z',
      valueQuantity: { value: 72, unit: '/min' },
      note: [{ text: `Patient says ${family} felt dizzy` }],
    },
    {
      resourceType: 'Observation',
      status: 'final',
      subject,
      code: { text: 'Symptom' },
      effectiveDateTime: '2024-03-12T08:30:00+02:00',
      valueString: `breathless since Monday (${family})`,
    },
    {
      resourceType: 'Condition',
      subject,
      code: { coding: [{ system: 'http://snomed.info/sct', code: '254837009', display: 'Breast cancer' }] },
      onsetDateTime: '2024-03-01',
      recordedDate: '2024-03-02',
      note: [{ text: `Reported by ${family}` }],
    },
    {
      resourceType: 'DocumentReference',
      status: 'current',
      subject,
      description: `Letter for ${family}`,
      date: '2024-03-05T09:00:00Z',
      content: [
        {
          attachment: {
            contentType: 'text/plain',
            data: Buffer.from(`Letter for ${family}`).toString('base64'),
            url: `https://files.example/letter/${family}`,
            title: `Letter for ${family}`,
          },
        },
      ],
    },
  ];
  const ids = [];
  for (const record of records) {
    const stored = await service.fhir(`/${record.resourceType}`, { body: record });
    expect([record.resourceType, stored.status]).toEqual([record.resourceType, 201]);
    ids.push(`${record.resourceType}/${stored.body.id}`);
  }
  patients[label] = { id: created.body.id, records: ids };
}

const prefer = { prefer: 'respond-async' };

async function kickOff(path: string, token: string, headers: Record<string, string> = prefer) {
  return service.fhir(path, { token, headers });
}

/** Polls the status URL until the manifest comes; answers it with every 202's X-Progress seen before. */
async function manifestOf(statusUrl: string, token: string): Promise<{ manifest: any; progress: string[] }> {
  const progress: string[] = [];
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    const response = await fetch(statusUrl, { headers: { authorization: `Bearer ${token}` } });
    if (response.status === 200) {
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      return { manifest: await response.json(), progress };
    }
    expect(response.status).toBe(202);
    expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
    progress.push(response.headers.get('x-progress') as string);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the export did not finish in 30 s');
}

async function exportOf(path: string, token: string): Promise<{ manifest: any; progress: string[]; byType: Record<string, any[]>; text: string }> {
  const started = await kickOff(path, token);
  expect(started.status).toBe(202);
  const { manifest, progress } = await manifestOf(started.headers.get('content-location') as string, token);
  const byType: Record<string, any[]> = {};
  let text = '';
  for (const output of manifest.output) {
    const file = await fetch(output.url, { headers: { authorization: `Bearer ${token}` } });
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toMatch(/^application\/fhir\+ndjson/);
    const body = await file.text();
    text += body;
    const lines = body
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
    expect(lines).toHaveLength(output.count);
    expect(lines.every((r) => r.resourceType === output.type)).toBe(true);
    byType[output.type] = [...(byType[output.type] ?? []), ...lines];
  }
  return { manifest, progress, byType, text };
}

beforeAll(async () => {
  service = await startTestService({ EXPORT_POLL_MS: '100', EXPORT_FILE_MAX_RESOURCES: '3' });
  analyst = await service.mintToken({ subject: 'analyst-1', scope: 'system/*.rs', role: 'analyst' });
  coordinator = await service.mintToken({ subject: 'coordinator-1', scope: 'system/*.rs', role: 'coordinator' });
  await seedPatient('a', 'Doe', '1964-07-12');
  await seedPatient('b', 'Roe', '1971-01-30');
  const created = await service.fhir('/Group', {
    body: {
      resourceType: 'Group',
      type: 'person',
      actual: true,
      member: [{ entity: { reference: `Patient/${patients.a.id}` } }, { entity: { reference: `Patient/${patients.b.id}` } }],
    },
  });
  expect(created.status).toBe(201);
  group = created.body.id;
  await new Promise((r) => setTimeout(r, 20));
  beforeLast = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  await seedPatient('c', 'Poe', '1980-05-05');
}, 60_000);
afterAll(async () => {
  await service?.stop();
});

describe('kick-off, status and files', () => {
  it('answers 202 with a status URL; the status answers 202 with X-Progress, then the manifest; one NDJSON file or more per type', async () => {
    const { manifest, progress, byType } = await exportOf('/$export?_type=Patient,Observation&deidentify=false', coordinator);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]).toMatch(/resources written/);
    expect(Date.parse(manifest.transactionTime)).not.toBeNaN();
    expect(manifest.request).toBe(`${service.base}/$export?_type=Patient%2CObservation&deidentify=false`);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.error).toEqual([]);
    // Three patients and six observations, at most three resources a file.
    expect(manifest.output.map((o: any) => [o.type, o.count])).toEqual([
      ['Patient', 3],
      ['Observation', 3],
      ['Observation', 3],
    ]);
    expect(new Set(manifest.output.map((o: any) => o.url)).size).toBe(3);
    // Identified: the resources as stored.
    expect(byType.Patient.map((p) => p.id).sort()).toEqual([patients.a.id, patients.b.id, patients.c.id].sort());
    const stored = (await service.fhir(`/Patient/${patients.a.id}`)).body;
    expect(byType.Patient.find((p) => p.id === patients.a.id)).toEqual(stored);
  });

  it('every type by default; _since keeps what changed after it; the output formats FHIR names are accepted', async () => {
    const all = await exportOf('/$export?deidentify=false&_outputFormat=application/fhir%2Bndjson', coordinator);
    expect(Object.keys(all.byType).sort()).toEqual(['Condition', 'DocumentReference', 'Group', 'Measure', 'Observation', 'Patient']);
    const since = await exportOf(`/$export?deidentify=false&_outputFormat=ndjson&_since=${encodeURIComponent(beforeLast)}`, coordinator);
    const exported = Object.values(since.byType)
      .flat()
      .map((r) => `${r.resourceType}/${r.id}`)
      .sort();
    expect(exported).toEqual([`Patient/${patients.c.id}`, ...patients.c.records].sort());
    expect((await kickOff('/$export?_outputFormat=application/ndjson', analyst)).status).toBe(202);
  });

  it("a Group's export holds its members and their records only", async () => {
    const { byType, manifest } = await exportOf(`/Group/${group}/$export?deidentify=false`, coordinator);
    expect(manifest.request).toBe(`${service.base}/Group/${group}/$export?deidentify=false`);
    const exported = Object.values(byType)
      .flat()
      .map((r) => `${r.resourceType}/${r.id}`)
      .sort();
    expect(exported).toEqual([`Patient/${patients.a.id}`, ...patients.a.records, `Patient/${patients.b.id}`, ...patients.b.records].sort());
    const typed = await exportOf(`/Group/${group}/$export?_type=Condition`, analyst);
    expect(Object.keys(typed.byType)).toEqual(['Condition']);
    expect(typed.byType.Condition).toHaveLength(2);
  });

  it('Patient level: every patient and the records that name one; a record about no patient stays out', async () => {
    const aboutNoPatient = await service.fhir('/Observation', {
      body: {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'Group tally' },
        subject: { reference: `Group/${group}` },
        valueQuantity: { value: 2 },
      },
    });
    expect(aboutNoPatient.status).toBe(201);
    try {
      const { byType, manifest } = await exportOf('/Patient/$export?deidentify=false', coordinator);
      expect(manifest.request).toBe(`${service.base}/Patient/$export?deidentify=false`);
      const exported = Object.values(byType)
        .flat()
        .map((r) => `${r.resourceType}/${r.id}`)
        .sort();
      expect(exported).toEqual(
        Object.values(patients)
          .flatMap((p) => [`Patient/${p.id}`, ...p.records])
          .sort(),
      );
      const typed = await exportOf('/Patient/$export?_type=Observation', analyst);
      expect(typed.manifest.output.map((o: any) => o.type)).toEqual(['Observation', 'Observation']);
      expect(Object.values(typed.byType).flat()).toHaveLength(6);
    } finally {
      expect((await service.fhir(`/Observation/${aboutNoPatient.body.id}`, { method: 'DELETE' })).status).toBe(200);
    }
    // The other levels the operation is not defined at.
    for (const path of ['/Group/$export', `/Patient/${patients.a.id}/$export`, '/Observation/$export']) {
      const refused = await kickOff(path, coordinator);
      expect([path, refused.status, refused.body.resourceType]).toEqual([path, 405, 'OperationOutcome']);
    }
  });

  it('_typeFilter keeps the resources of a type that match any of its searches; types without one are whole', async () => {
    const heartRate = encodeURIComponent('Observation?code=http://loinc.org|8867-4');
    const system = await exportOf(`/$export?_type=Observation,Condition&_typeFilter=${heartRate}&deidentify=false`, coordinator);
    expect(system.byType.Observation.map((o) => o.code.coding[0].code)).toEqual(['8867-4', '8867-4', '8867-4']);
    expect(system.byType.Condition).toHaveLength(3);
    const either = encodeURIComponent('Observation?code=http://loinc.org|8867-4,Observation?date=ge2024-03-11');
    expect(Object.values((await exportOf(`/$export?_type=Observation&_typeFilter=${either}`, analyst)).byType).flat()).toHaveLength(6);
    const members = await exportOf(
      `/Group/${group}/$export?_type=Patient,Observation&_typeFilter=${heartRate}&_typeFilter=${encodeURIComponent('Patient?birthdate=lt1970')}&deidentify=false`,
      coordinator,
    );
    expect(members.byType.Patient.map((p) => p.id)).toEqual([patients.a.id]);
    expect(members.byType.Observation.map((o) => o.subject.reference).sort()).toEqual([`Patient/${patients.a.id}`, `Patient/${patients.b.id}`].sort());
  });

  it('_elements keeps the listed root elements, the mandatory ones, id and meta, and tags the resource SUBSETTED', async () => {
    const { byType } = await exportOf('/$export?_type=Patient,Observation&_elements=Patient.birthDate,value,subject&deidentify=false', coordinator);
    const patient = byType.Patient.find((p) => p.id === patients.a.id);
    expect(Object.keys(patient).sort()).toEqual(['birthDate', 'id', 'meta', 'resourceType']);
    expect(patient.birthDate).toBe('1964-07-12');
    expect(patient.meta.tag).toContainEqual(expect.objectContaining({ code: 'SUBSETTED' }));
    // Observation: value[x] and subject as asked, status and code because R4 requires them.
    for (const observation of byType.Observation) {
      expect(
        Object.keys(observation)
          .filter((k) => !['id', 'meta', 'resourceType'].includes(k))
          .sort(),
      ).toEqual(['code', 'status', 'subject', observation.valueQuantity ? 'valueQuantity' : 'valueString'].sort());
    }
    // De-identification still applies to what is kept.
    const deidentified = await exportOf('/$export?_type=Patient&_elements=birthDate,name', analyst);
    expect(deidentified.byType.Patient.every((p) => p.name === undefined && /^\d{4}$/.test(p.birthDate))).toBe(true);
  });

  it('a POST kick-off takes its parameters in a Parameters body', async () => {
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: '_type', valueString: 'Patient' },
        { name: '_elements', valueString: 'gender' },
        { name: 'deidentify', valueBoolean: false },
      ],
    };
    const started = await service.fhir('/Patient/$export', { method: 'POST', token: coordinator, headers: prefer, body });
    expect(started.status).toBe(202);
    const { manifest } = await manifestOf(started.headers.get('content-location') as string, coordinator);
    expect(manifest.request).toBe(`${service.base}/Patient/$export`);
    expect(manifest.output.map((o: any) => [o.type, o.count])).toEqual([['Patient', 3]]);
    const refusals: [string, unknown, string][] = [
      ['/$export?_type=Patient', body, '_type'],
      ['/$export', { resourceType: 'Parameters', parameter: [{ name: 'spaceship', valueString: 'x' }] }, 'Parameters.parameter[0].name'],
      ['/$export', { resourceType: 'Parameters', parameter: [{ name: '_since', valueString: 'yesterday' }] }, 'Parameters.parameter[0].valueInstant'],
      ['/$export', { resourceType: 'Patient' }, 'Parameters'],
    ];
    for (const [path, refusedBody, expression] of refusals) {
      const refused = await service.fhir(path, { method: 'POST', token: coordinator, headers: prefer, body: refusedBody });
      expect([path, refused.status, refused.body.issue?.[0].expression]).toEqual([path, 400, [expression]]);
    }
  });

  it('DELETE on the status URL cancels the export and deletes its files', async () => {
    const started = await kickOff('/$export', analyst);
    const statusUrl = started.headers.get('content-location') as string;
    const cancelled = await fetch(statusUrl, { method: 'DELETE', headers: { authorization: `Bearer ${analyst}` } });
    expect(cancelled.status).toBe(202);
    expect((await cancelled.json()).resourceType).toBe('OperationOutcome');
    expect((await fetch(statusUrl, { headers: { authorization: `Bearer ${analyst}` } })).status).toBe(404);

    const finished = await kickOff('/$export?_type=Patient', analyst);
    const finishedUrl = finished.headers.get('content-location') as string;
    const { manifest } = await manifestOf(finishedUrl, analyst);
    expect((await fetch(finishedUrl, { method: 'DELETE', headers: { authorization: `Bearer ${analyst}` } })).status).toBe(202);
    expect((await fetch(manifest.output[0].url, { headers: { authorization: `Bearer ${analyst}` } })).status).toBe(404);
    expect((await fetch(finishedUrl, { headers: { authorization: `Bearer ${analyst}` } })).status).toBe(404);
  });

  it("another caller's status and file URLs answer 404; without a token 401", async () => {
    const started = await kickOff('/$export?_type=Patient', analyst);
    const statusUrl = started.headers.get('content-location') as string;
    const { manifest } = await manifestOf(statusUrl, analyst);
    const other = await service.mintToken({ subject: 'analyst-2', scope: 'system/*.rs', role: 'analyst' });
    for (const url of [statusUrl, manifest.output[0].url]) {
      const response = await fetch(url, { headers: { authorization: `Bearer ${other}` } });
      expect(response.status).toBe(404);
      expect((await response.json()).resourceType).toBe('OperationOutcome');
      expect((await fetch(url)).status).toBe(401);
    }
    expect((await fetch(statusUrl, { method: 'DELETE', headers: { authorization: `Bearer ${other}` } })).status).toBe(404);
    expect((await fetch(statusUrl, { headers: { authorization: `Bearer ${analyst}` } })).status).toBe(200);
  });
});

describe('retention', () => {
  it('states when an export expires, and then deletes it with its files', async () => {
    const databaseName = `test-export-retention-${randomUUID().slice(0, 8)}`;
    const brief = await startTestService({ DATABASE_NAME: databaseName, EXPORT_POLL_MS: '100', EXPORT_RETENTION_SECONDS: '3' });
    const connection = await mongoose.createConnection(process.env.MONGODB_URI as string, { dbName: databaseName }).asPromise();
    try {
      const token = await brief.mintToken({ subject: 'analyst-1', scope: 'system/*.rs', role: 'analyst' });
      expect((await brief.fhir('/Patient', { body: patientBody('Doe', '1964-07-12') })).status).toBe(201);
      const started = await brief.fhir('/$export?_type=Patient', { token, headers: prefer });
      const statusUrl = started.headers.get('content-location') as string;
      const { manifest } = await manifestOf(statusUrl, token);
      const status = await fetch(statusUrl, { headers: { authorization: `Bearer ${token}` } });
      const expires = Date.parse(status.headers.get('expires') as string);
      expect(expires - Date.now()).toBeGreaterThan(-1000);
      expect(expires - Date.now()).toBeLessThanOrEqual(3000);
      expect((await fetch(manifest.output[0].url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      const files = connection.collection('exports.files');
      expect(await files.countDocuments({ 'metadata.job': statusUrl.split('/').pop() })).toBe(1);
      // An ended export is kept among the ended jobs, not among the work to do that workers poll.
      expect([
        await connection.collection('jobs').countDocuments({ kind: 'bulk-export' }),
        await connection.collection('jobs_ended').countDocuments({ kind: 'bulk-export' }),
      ]).toEqual([0, 1]);

      // The header is to the second; the export expires within the second after it.
      await new Promise((r) => setTimeout(r, expires - Date.now() + 1100));
      // Past its time the export is gone for its caller at once, and the worker deletes it within a poll or two.
      for (const url of [statusUrl, manifest.output[0].url]) expect((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
      const left = async (): Promise<number> =>
        (await files.countDocuments({})) +
        (await connection.collection('jobs').countDocuments({ kind: 'bulk-export' })) +
        (await connection.collection('jobs_ended').countDocuments({ kind: 'bulk-export' }));
      for (const deadline = Date.now() + 10_000; Date.now() < deadline && (await left()) > 0;) await new Promise((r) => setTimeout(r, 200));
      expect(await files.countDocuments({})).toBe(0);
      expect(await connection.collection('exports.chunks').countDocuments({})).toBe(0);
      expect(await connection.collection('jobs').countDocuments({ kind: 'bulk-export' })).toBe(0);
      expect(await connection.collection('jobs_ended').countDocuments({ kind: 'bulk-export' })).toBe(0);
    } finally {
      await connection.dropDatabase();
      await connection.close();
      await brief.stop();
    }
  }, 60_000);
});

describe('de-identification', () => {
  it('removes names, identifiers, addresses, telecom, photo, contact and free text; labels each resource', async () => {
    const { byType, text } = await exportOf('/$export', analyst);
    for (const secret of [...secrets, ...Object.values(patients).flatMap((p) => [p.id, ...p.records.map((r) => r.split('/')[1])])]) {
      expect([secret, text.includes(secret)]).toEqual([secret, false]);
    }
    for (const resource of Object.values(byType).flat()) {
      expect(resource.meta.security.map((c: any) => c.code).sort()).toEqual(['PSEUDED', 'REDACTED']);
      expect(resource.text).toBeUndefined();
      expect(resource.identifier).toBeUndefined();
    }
    const patient = byType.Patient.find((p) => p.birthDate === '1964');
    expect(Object.keys(patient).sort()).toEqual(['birthDate', 'gender', 'generalPractitioner', 'id', 'meta', 'resourceType']);
    expect(patient.generalPractitioner).toEqual([{ reference: expect.stringMatching(/^Practitioner\/[0-9a-f]{32}$/) }]);
    const document = byType.DocumentReference[0];
    expect(document.description).toBeUndefined();
    expect(document.content[0].attachment).toEqual({ contentType: 'text/plain' });
    // What codes say stays: the coding, the value.
    const heartRate = byType.Observation.find((o) => o.valueQuantity);
    expect(heartRate.code).toEqual({ coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] });
    expect(heartRate.valueQuantity).toEqual({ value: 72, unit: '/min' });
  });

  it('one hashed id per patient across its records in one export, another in the next; dates moved by one offset per patient', async () => {
    const first = await exportOf(`/Group/${group}/$export`, analyst);
    const second = await exportOf(`/Group/${group}/$export`, analyst);
    const offsets: number[] = [];
    for (const run of [first, second]) {
      for (const birthYear of ['1964', '1971']) {
        const patient = run.byType.Patient.find((p) => p.birthDate === birthYear);
        expect(patient.id).toMatch(/^[0-9a-f]{32}$/);
        const own = (r: any) => r.subject?.reference === `Patient/${patient.id}`;
        const observations = run.byType.Observation.filter(own);
        const [condition] = run.byType.Condition.filter(own);
        const [document] = run.byType.DocumentReference.filter(own);
        expect([observations.length, !!condition, !!document]).toEqual([2, true, true]);
        // Every date of the patient moves back by the same whole number of days (1 to 365), time of day and zone kept.
        const days = (shifted: string, original: string) => (Date.parse(original) - Date.parse(shifted)) / 86_400_000;
        const heartRate = observations.find((o) => o.valueQuantity);
        const symptom = observations.find((o) => !o.valueQuantity);
        const offset = days(heartRate.effectiveDateTime, '2024-03-10T10:00:00Z');
        expect(Number.isInteger(offset) && offset >= 1 && offset <= 365).toBe(true);
        expect(heartRate.effectiveDateTime).toMatch(/T10:00:00Z$/);
        expect(symptom.effectiveDateTime).toMatch(/T08:30:00\+02:00$/);
        expect(days(symptom.effectiveDateTime, '2024-03-12T08:30:00+02:00')).toBe(offset);
        expect(days(condition.onsetDateTime, '2024-03-01')).toBe(offset);
        expect(days(condition.recordedDate, '2024-03-02')).toBe(offset);
        expect(days(document.date, '2024-03-05T09:00:00Z')).toBe(offset);
        offsets.push(offset);
      }
    }
    const ids = (run: typeof first) => run.byType.Patient.map((p) => p.id).sort();
    expect(ids(first)).not.toEqual(ids(second));
    expect(first.byType.Group ?? []).toEqual([]);
    expect(new Set(offsets).size).toBeGreaterThan(1);
  });
});

describe('refusals', () => {
  it('by role: analysts never identified; reviewers and referrer systems not at all; coordinators may ask for identified output', async () => {
    const reviewer = await service.mintToken({ subject: 'reviewer-1', scope: 'system/*.rs', role: 'reviewer' });
    const referrer = await service.mintToken({ subject: 'ehr-1', scope: 'system/*.*', role: 'referrer-system', institution: 'Organization/x' });
    for (const [token, path, expression] of [
      [analyst, '/$export?deidentify=false', 'deidentify'],
      [reviewer, '/$export', undefined],
      [referrer, `/Group/${group}/$export`, undefined],
    ] as const) {
      const refused = await kickOff(path, token);
      expect(refused.status).toBe(403);
      expect(refused.body.issue[0].code).toBe('forbidden');
      if (expression) expect(refused.body.issue[0].expression).toEqual([expression]);
    }
    expect((await kickOff('/$export?deidentify=false&_type=Patient', coordinator)).status).toBe(202);
    const narrow = await service.mintToken({ subject: 'analyst-3', scope: 'system/Observation.rs', role: 'analyst' });
    expect((await kickOff('/$export', narrow)).status).toBe(403);
    expect((await kickOff('/$export?_type=Observation', narrow)).status).toBe(202);
  });

  it('bad parameters answer 400 naming the parameter; an unknown Group 404', async () => {
    for (const [path, headers, expression] of [
      ['/$export?_type=Patient,Spaceship', prefer, '_type'],
      ['/$export?_since=yesterday', prefer, '_since'],
      ['/$export?_since=2026-01-01', prefer, '_since'],
      ['/$export?_outputFormat=text/csv', prefer, '_outputFormat'],
      ['/$export?deidentify=maybe', prefer, 'deidentify'],
      ['/$export?_type=Observation&_typeFilter=Observation%3Fspaceship%3D1', prefer, '_typeFilter'],
      ['/$export?_type=Observation&_typeFilter=Observation%3F_count%3D5', prefer, '_typeFilter'],
      ['/$export?_type=Observation&_typeFilter=Patient%3Fgender%3Dfemale', prefer, '_typeFilter'],
      ['/$export?_typeFilter=status%3Dfinal', prefer, '_typeFilter'],
      ['/$export?_type=Patient&_elements=Patient.spaceship', prefer, '_elements'],
      ['/$export?_type=Patient&_elements=Observation.status', prefer, '_elements'],
      ['/$export?_type=Patient&_elements=name.family', prefer, '_elements'],
      ['/$export', {}, 'Prefer'],
    ] as const) {
      const refused = await kickOff(path, analyst, headers);
      expect([path, refused.status, refused.body.resourceType, refused.body.issue[0].expression]).toEqual([path, 400, 'OperationOutcome', [expression]]);
    }
    expect((await kickOff('/Group/no-such-group/$export', analyst)).status).toBe(404);
    expect((await kickOff('/Observation/$export', analyst)).status).toBe(405);
  });

  it('the CapabilityStatement lists the export at system level, on Patient and on Group', async () => {
    const metadata = (await service.fhir('/metadata', { token: null })).body;
    expect(metadata.rest[0].operation.map((o: any) => o.name)).toContain('export');
    for (const type of ['Group', 'Patient'])
      expect(metadata.rest[0].resource.find((r: any) => r.type === type).operation.map((o: any) => o.name)).toContain('export');
  });
});
