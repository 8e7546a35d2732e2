// The referring institution's FHIR server in tests and benchmarks: @medplum/fhir-router (FhirRouter + MemoryRepository),
// a real FHIR server no one here wrote, served over HTTP on 127.0.0.1 by a few lines of express.
// Paging links belong to the HTTP layer (Medplum's own server adds them there), so this adapter adds
// `next` from _count/_offset; that is plumbing, not FHIR semantics. FhirRouter answers no
// CapabilityStatement and has no Patient/$everything (Medplum's server adds both), so this adapter
// serves a CapabilityStatement, and in the `everything` variant adds the operation on the router:
// the Patient and every record that points at it, paged by _count/_offset, filtered by _since.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { allOk, getSearchParameter, getStatus, notFound, Operator } from '@medplum/core';
import { FhirRouter, MemoryRepository, type FhirRequest, type FhirResponse } from '@medplum/fhir-router';
import type { Binary, Bundle, CapabilityStatement, Resource, ResourceType } from '@medplum/fhirtypes';
import { loadBaseDefinitions } from '../../src/base/base-definitions.js';

export interface ReferringEhr {
  /** The FHIR base URL, e.g. http://127.0.0.1:PORT/fhir */
  base: string;
  repo: MemoryRepository;
  /** Every request the server answered, as `METHOD path?query`. */
  requests: string[];
  stop(): Promise<void>;
}

export interface ReferringEhrOptions {
  /** When given, every FHIR call needs an Authorization header this accepts (else 401). */
  accepts?: (authorization: string | undefined) => boolean;
  /** Served at /fhir/.well-known/smart-configuration. */
  smartConfiguration?: Record<string, unknown>;
  /** Offer Patient/$everything (and say so in the CapabilityStatement). */
  everything?: boolean;
  /** The port to listen on (127.0.0.1); a free one when absent. */
  port?: number;
  /** A status to refuse a request with (e.g. 405 for `PUT /ServiceRequest/...`), as a locked-down EHR does. */
  refuses?: (method: string, path: string) => number | undefined;
}

/** The kinds of record this EHR holds about a patient, in the order $everything answers them. */
const recordTypes: ResourceType[] = [
  'Condition',
  'Observation',
  'Procedure',
  'MedicationRequest',
  'MedicationStatement',
  'AllergyIntolerance',
  'Immunization',
  'Encounter',
  'DiagnosticReport',
  'ImagingStudy',
  'DocumentReference',
  'CarePlan',
];

export async function startReferringEhr(options: ReferringEhrOptions = {}): Promise<ReferringEhr> {
  loadBaseDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  if (options.everything) {
    router.add('GET', '/Patient/:id/$everything', (req, r) => everything(req, r as MemoryRepository));
  }
  const requests: string[] = [];
  const app = express();
  app.use(express.json({ type: ['application/json', 'application/fhir+json'], limit: '50mb' }));
  app.get('/fhir/metadata', (req, res) => {
    requests.push(`GET ${req.url.replace(/^\/fhir/, '')}`);
    res.type('application/fhir+json').send(JSON.stringify(capabilityStatement(!!options.everything)));
  });
  if (options.smartConfiguration) {
    app.get('/fhir/.well-known/smart-configuration', (_req, res) => {
      res.json(options.smartConfiguration);
    });
  }
  app.use('/fhir', async (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (options.accepts && !options.accepts(req.headers.authorization)) {
      res
        .status(401)
        .type('application/fhir+json')
        .send(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] }));
      return;
    }
    const refusal = options.refuses?.(req.method, req.path);
    if (refusal) {
      res
        .status(refusal)
        .type('application/fhir+json')
        .send(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden' }] }));
      return;
    }
    const [outcome, resource] = await router.handleRequest(
      {
        method: req.method as 'GET',
        url: req.url,
        pathname: '',
        body: req.body,
        params: {},
        query: req.query as Record<string, string>,
        headers: req.headers,
      },
      repo,
    );
    const status = getStatus(outcome);
    if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') {
      addPagingLinks(resource, new URL(`http://${req.headers.host}/fhir${req.url}`));
    }
    res
      .status(status)
      .type('application/fhir+json')
      .send(JSON.stringify(resource ?? outcome));
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(options.port ?? 0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  return {
    base,
    repo,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function capabilityStatement(withEverything: boolean): CapabilityStatement {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-01-01',
    kind: 'instance',
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        resource: (['Patient', 'Binary', ...recordTypes] as ResourceType[]).map((type) => ({
          type,
          interaction: [{ code: 'read' }, { code: 'search-type' }],
          ...(type === 'Patient' && withEverything
            ? { operation: [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }] }
            : {}),
        })),
      },
    ],
  };
}

async function everything(req: FhirRequest, repo: MemoryRepository): Promise<FhirResponse> {
  const patient = await repo.readResource('Patient', req.params.id).catch(() => undefined);
  if (!patient) return [notFound];
  const since = req.query._since ? new Date(String(req.query._since)).getTime() : undefined;
  const records: Resource[] = [patient];
  for (const resourceType of recordTypes) {
    const code = getSearchParameter(resourceType, 'patient') ? 'patient' : 'subject';
    records.push(
      ...(await repo.searchResources({ resourceType, filters: [{ code, operator: Operator.EQUALS, value: `Patient/${patient.id}` }], count: 100_000 })),
    );
  }
  const changed = since === undefined ? records : records.filter((r) => new Date(r.meta?.lastUpdated ?? 0).getTime() >= since);
  const count = Number(req.query._count ?? 100);
  const offset = Number(req.query._offset ?? 0);
  const page = changed.slice(offset, offset + count);
  return [
    allOk,
    { resourceType: 'Bundle', type: 'searchset', total: changed.length, entry: page.map((resource) => ({ resource, search: { mode: 'match' } })) },
  ];
}

function addPagingLinks(bundle: Bundle, self: URL): void {
  const count = Number(self.searchParams.get('_count') ?? 20);
  const offset = Number(self.searchParams.get('_offset') ?? 0);
  bundle.link = [{ relation: 'self', url: self.toString() }];
  if ((bundle.entry?.length ?? 0) >= count) {
    const next = new URL(self);
    next.searchParams.set('_offset', String(offset + count));
    next.searchParams.set('_count', String(count));
    bundle.link.push({ relation: 'next', url: next.toString() });
  }
}

/** Seeds one synthetic patient with `perType` records of each clinical kind; answers the patient's id. */
export async function seedPatient(repo: MemoryRepository, perType: number, family = 'Synthetic'): Promise<string> {
  const patient = await repo.createResource({ resourceType: 'Patient', name: [{ family, given: ['Test'] }], gender: 'female', birthDate: '1964-07-12' });
  const subject = { reference: `Patient/${patient.id}` };
  const coded = (text: string) => ({ coding: [{ system: 'http://snomed.info/sct', code: '12345', display: text }], text });
  const makers: ((i: number) => Resource)[] = [
    (i) => ({
      resourceType: 'Condition',
      subject,
      code: coded(`Condition ${i}`),
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    }),
    (i) => ({ resourceType: 'Observation', status: 'final', subject, code: coded(`Observation ${i}`), valueQuantity: { value: i, unit: 'mg/dL' } }),
    (i) => ({ resourceType: 'Procedure', status: 'completed', subject, code: coded(`Procedure ${i}`) }),
    (i) => ({ resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject, medicationCodeableConcept: coded(`Medication ${i}`) }),
    (i) => ({ resourceType: 'MedicationStatement', status: 'active', subject, medicationCodeableConcept: coded(`Medication ${i}`) }),
    (i) => ({
      resourceType: 'AllergyIntolerance',
      patient: subject,
      code: coded(`Allergy ${i}`),
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
    }),
    (i) => ({ resourceType: 'Immunization', status: 'completed', patient: subject, vaccineCode: coded(`Vaccine ${i}`), occurrenceDateTime: '2020-01-01' }),
    (i) => ({
      resourceType: 'Encounter',
      status: 'finished',
      subject,
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: `visit ${i}` },
    }),
    (i) => ({ resourceType: 'DiagnosticReport', status: 'final', subject, code: coded(`Report ${i}`) }),
    (i) => ({ resourceType: 'ImagingStudy', status: 'available', subject, description: `Study ${i}` }),
    (i) => ({
      resourceType: 'DocumentReference',
      status: 'current',
      subject,
      content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(`Note ${i}`).toString('base64') } }],
    }),
    (i) => ({ resourceType: 'CarePlan', status: 'active', intent: 'plan', subject, title: `Plan ${i}` }),
  ];
  for (let i = 0; i < perType; i++) {
    for (const make of makers) {
      await repo.createResource(make(i));
    }
  }
  return patient.id;
}

/**
 * Attachments by URL, as an EHR keeps them: one DocumentReference per size, each pointing at a Binary
 * of that many bytes on this server, and a DiagnosticReport whose rendering is a Binary too.
 * Answers the Binary ids, in the order of `sizes`, then the report's.
 */
export async function seedAttachments(repo: MemoryRepository, patientId: string, sizes: number[]): Promise<string[]> {
  const subject = { reference: `Patient/${patientId}` };
  const ids: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const binary = await repo.createResource<Binary>({
      resourceType: 'Binary',
      contentType: 'application/pdf',
      data: Buffer.alloc(size, i + 1).toString('base64'),
    });
    await repo.createResource({
      resourceType: 'DocumentReference',
      status: 'current',
      subject,
      description: `Scanned letter ${i + 1}`,
      content: [{ attachment: { contentType: 'application/pdf', url: `Binary/${binary.id}` } }],
    });
    ids.push(binary.id);
  }
  const rendering = await repo.createResource<Binary>({
    resourceType: 'Binary',
    contentType: 'text/html',
    data: Buffer.from('<p>Histology: invasive ductal carcinoma, grade 2.</p>').toString('base64'),
  });
  await repo.createResource({
    resourceType: 'DiagnosticReport',
    status: 'final',
    subject,
    code: { text: 'Histology' },
    presentedForm: [{ contentType: 'text/html', url: `Binary/${rendering.id}` }],
  });
  ids.push(rendering.id);
  return ids;
}
