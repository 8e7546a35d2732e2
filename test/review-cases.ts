// What the review tests build on: institutions, reviewers, and cases opened the way an EHR opens
// them (a second-opinion request whose patient is on the referring EHR's own FHIR server).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { canonicalBase, defaultProfilesDir } from '../src/conformance/artifacts.js';
import type { FhirResponse, TestService } from './harness.js';

/** What the helpers need of a service: its FHIR calls (one process, or several behind a balancer). */
type Service = Pick<TestService, 'fhir'>;

/** The body of a create that answered 201; any other answer fails the caller with what the service said. */
function created(response: FhirResponse, what: string): any {
  if (response.status !== 201) throw new Error(`creating ${what} answered ${response.status}: ${JSON.stringify(response.body).slice(0, 500)}`);
  return response.body;
}

export const snomed = 'http://snomed.info/sct';
export const icd10cm = 'http://hl7.org/fhir/sid/icd-10-cm';
const canonical = canonicalBase();
export const capacityUrl = `${canonical}/StructureDefinition/reviewer-capacity`;
export const businessStatusSystem = `${canonical}/CodeSystem/task-business-status`;

/** SNOMED CT practice settings, as reviewers' specialties are coded. */
export const specialty = { histopathology: '394597005', oncology: '394593009', cardiology: '394579002', neurology: '394591006' };

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));

export async function createOrganization(service: Service, name: string): Promise<string> {
  return created(await service.fhir('/Organization', { body: { resourceType: 'Organization', name } }), 'an Organization').id;
}

/** A referring institution: its Organization and the Endpoint of its FHIR server. */
export async function registerInstitution(service: Service, name: string, ehrBase: string): Promise<string> {
  const organizationId = await createOrganization(service, name);
  const endpoint = await service.fhir('/Endpoint', {
    body: {
      resourceType: 'Endpoint',
      status: 'active',
      address: ehrBase,
      managingOrganization: { reference: `Organization/${organizationId}` },
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
      payloadType: [{ text: 'FHIR R4' }],
    },
  });
  created(endpoint, 'an Endpoint');
  return organizationId;
}

export interface ReviewerSpec {
  name: string;
  organizationId: string;
  specialty: string;
  capacity?: number;
}

/** A reviewer: a Practitioner (languages, licence) and the PractitionerRole cases are routed to; answers the role's id. */
export async function registerReviewer(service: Service, spec: ReviewerSpec): Promise<string> {
  const practitioner = await service.fhir('/Practitioner', {
    body: {
      resourceType: 'Practitioner',
      name: [{ family: spec.name }],
      communication: [{ coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] }],
      qualification: [
        { code: { text: 'Licence to practise medicine' }, issuer: { display: 'Medical Council' }, period: { start: '2010-01-01', end: '2099-12-31' } },
      ],
    },
  });
  created(practitioner, 'a Practitioner');
  const role = await service.fhir('/PractitionerRole', {
    body: {
      resourceType: 'PractitionerRole',
      active: true,
      practitioner: { reference: `Practitioner/${practitioner.body.id}` },
      organization: { reference: `Organization/${spec.organizationId}` },
      specialty: [{ coding: [{ system: snomed, code: spec.specialty }] }],
      ...(spec.capacity === undefined ? {} : { extension: [{ url: capacityUrl, valueUnsignedInt: spec.capacity }] }),
    },
  });
  return created(role, 'a PractitionerRole').id;
}

/** A second-opinion request for the patient on `ehrBase`; `changes` replace the example's elements. */
export function secondOpinionRequest(orderId: string, ehrBase: string, patientId: string, changes: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...example,
    identifier: [{ system: 'https://ehr.example/orders', value: orderId }],
    subject: { reference: `${ehrBase}/Patient/${patientId}` },
    supportingInfo: undefined,
    ...changes,
  };
}

export const reason = (system: string, code: string) => ({ reasonCode: [{ coding: [{ system, code }] }] });

/** Posts the request and answers its case's Task once routing has placed it (assigned or queued). */
export async function openCase(service: Service, request: Record<string, unknown>): Promise<any> {
  const { id } = created(await service.fhir('/ServiceRequest', { body: request }), 'a ServiceRequest');
  return taskWhen(service, id, (task) => ['assigned', 'awaiting-assignment'].includes(businessStatus(task) ?? '') || task.status === 'failed');
}

export async function taskWhen(service: Service, id: string, done: (task: any) => boolean): Promise<any> {
  for (const deadline = Date.now() + 30_000; ;) {
    const task = (await service.fhir(`/Task/${id}`)).body;
    if ((task?.resourceType === 'Task' && done(task)) || Date.now() > deadline) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const businessStatus = (task: any): string | undefined => task?.businessStatus?.coding?.[0]?.code;
