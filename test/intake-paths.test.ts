// The three ways in: push, $submit (the service reads the request from the EHR) and pull (polling,
// or a rest-hook notification that triggers it). The same request by any path, any number of times,
// is one case.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startTestService, type TestService } from './harness.js';
import { seedPatient, startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

const example = JSON.parse(readFileSync(path.join(defaultProfilesDir(), 'examples', 'valid', 'ServiceRequest-breast-cancer-histology.json'), 'utf8'));

let service: TestService;
let ehr: ReferringEhr;
let patientId: string;
let organizationId: string;
let endpointId: string;

beforeAll(async () => {
  service = await startTestService({ RETRIEVAL_POLL_MS: '100', OUTBOUND_RETRY_BASE_MS: '10' });
  ehr = await startReferringEhr();
  patientId = await seedPatient(ehr.repo, 2);
  organizationId = (await service.fhir('/Organization', { body: { resourceType: 'Organization', name: 'Pulling Hospital' } })).body.id;
  endpointId = (
    await service.fhir('/Endpoint', {
      body: {
        resourceType: 'Endpoint',
        status: 'active',
        address: ehr.base,
        managingOrganization: { reference: `Organization/${organizationId}` },
        connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
        payloadType: [{ text: 'FHIR R4' }],
      },
    })
  ).body.id;
});
afterAll(async () => {
  await service?.stop();
  await ehr?.stop();
});

/** A second-opinion request kept on the EHR's own server. */
async function requestOnTheEhr(orderId: string): Promise<string> {
  const { meta: _meta, ...body } = example;
  const stored = await ehr.repo.createResource({
    ...body,
    identifier: [{ system: 'https://pull.example/orders', value: orderId }],
    subject: { reference: `Patient/${patientId}` },
    supportingInfo: undefined,
  });
  return stored.id as string;
}

const submit = (serviceRequestId: string, institution = `Organization/${organizationId}`) =>
  service.fhir('/ServiceRequest/$submit', {
    body: {
      resourceType: 'Parameters',
      parameter: [
        { name: 'institution', valueReference: { reference: institution } },
        { name: 'serviceRequestId', valueString: serviceRequestId },
      ],
    },
  });

const tasksFor = async (orderId: string): Promise<any[]> => {
  const requests = (await service.fhir(`/ServiceRequest?identifier=https://pull.example/orders|${orderId}`)).body;
  expect(requests.total).toBe(1);
  return (await service.fhir(`/Task?focus=ServiceRequest/${requests.entry[0].resource.id}`)).body.entry ?? [];
};

describe('three ways in, one case', () => {
  it('$submit reads the request from the EHR and opens its case; submitted again, it is the same case', async () => {
    const remoteId = await requestOnTheEhr('SUB-1');
    const first = await submit(remoteId);
    expect(first.status).toBe(201);
    expect(first.body.resourceType).toBe('Task');
    expect(first.body.businessStatus.coding[0].code).toBe('records-retrieving');
    const again = await submit(remoteId);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(ehr.requests).toContain(`GET /ServiceRequest/${remoteId}`);
    expect(await tasksFor('SUB-1')).toHaveLength(1);
  });

  it('the same request pushed as well, even without If-None-Exist, stays one case', async () => {
    const pushed = await service.fhir('/ServiceRequest', {
      body: {
        ...example,
        identifier: [{ system: 'https://pull.example/orders', value: 'SUB-1' }],
        subject: { reference: `${ehr.base}/Patient/${patientId}` },
        supportingInfo: undefined,
      },
    });
    expect(pushed.status).toBe(200);
    expect(await tasksFor('SUB-1')).toHaveLength(1);
  });

  it('a rest-hook notification makes the service poll the institution, which finds new requests once', async () => {
    await requestOnTheEhr('PULL-1');
    const notified = await service.fhir(`/Endpoint/${endpointId}/$notify`, { body: { resourceType: 'Bundle', type: 'history' } });
    expect(notified.status).toBe(200);
    expect(notified.body.issue[0].details.text).toMatch(/^2 second-opinion request/);
    expect(await tasksFor('PULL-1')).toHaveLength(1);
    expect(ehr.requests.some((r) => r.startsWith('GET /ServiceRequest?') && decodeURIComponent(r).includes('category='))).toBe(true);
    await service.fhir(`/Endpoint/${endpointId}/$notify`, { body: {} });
    expect(await tasksFor('PULL-1')).toHaveLength(1);
    expect(await tasksFor('SUB-1')).toHaveLength(1);
  });

  it('answers clear errors for an unknown institution, an unknown request and a malformed call, storing nothing', async () => {
    const before = (await service.fhir('/ServiceRequest?_summary=count')).body.total;
    const unknownInstitution = await submit('anything', 'Organization/not-registered');
    expect(unknownInstitution.status).toBe(400);
    expect(unknownInstitution.body.issue[0].expression).toEqual(['Parameters.parameter.institution']);
    const unknownRequest = await submit('no-such-request');
    expect(unknownRequest.status).toBe(404);
    expect(unknownRequest.body.issue[0].details.text).toMatch(/HTTP 404/);
    const malformed = await service.fhir('/ServiceRequest/$submit', { body: { resourceType: 'Patient' } });
    expect(malformed.status).toBe(400);
    expect((await service.fhir('/ServiceRequest?_summary=count')).body.total).toBe(before);
  });
});
