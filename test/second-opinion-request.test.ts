// The foundation's promise to an EHR: the server says what it supports; a second-opinion request is
// created once however often it is sent, found by search, and an invalid one is refused by name.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startTestService, type TestService } from './harness.js';

const validDir = path.join(defaultProfilesDir(), 'examples', 'valid');
const request = readdirSync(validDir)
  .map((f) => JSON.parse(readFileSync(path.join(validDir, f), 'utf8')))
  .find((r) => r.resourceType === 'ServiceRequest');

let service: TestService;
beforeAll(async () => {
  service = await startTestService();
});
afterAll(async () => {
  await service?.stop();
});

describe('an EHR asks for a second opinion', () => {
  it('reads the CapabilityStatement the server builds from what it supports', async () => {
    const res = await service.fhir('/metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    expect(res.body.fhirVersion).toBe('4.0.1');
    const rest = res.body.rest[0];
    const serviceRequest = rest.resource.find((r: { type: string }) => r.type === 'ServiceRequest');
    expect(serviceRequest.supportedProfile).toEqual([expect.stringMatching(/StructureDefinition\/second-opinion-request$/)]);
    expect(serviceRequest.conditionalCreate).toBe(true);
    expect(serviceRequest.interaction.map((i: { code: string }) => i.code)).toEqual(
      expect.arrayContaining(['read', 'vread', 'update', 'delete', 'create', 'search-type', 'history-instance']),
    );
    expect(serviceRequest.searchParam.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(['_id', '_lastUpdated', 'identifier', 'patient', 'subject', 'status', 'based-on', 'category', 'code']),
    );
    expect(serviceRequest.searchInclude).toContain('ServiceRequest:subject');
    expect(serviceRequest.operation.map((o: { name: string }) => o.name)).toContain('validate');
    expect(rest.interaction.map((i: { code: string }) => i.code)).toEqual(['transaction', 'batch']);
    expect(rest.resource.map((r: { type: string }) => r.type)).toEqual(
      expect.arrayContaining(['Task', 'DiagnosticReport', 'Communication', 'Patient', 'CarePlan']),
    );
  });

  it('creates the request once, however often it is sent, and finds it by search', async () => {
    const identifier = request.identifier[0];
    const headers = { 'if-none-exist': `identifier=${identifier.system}|${identifier.value}` };
    const first = await service.fhir('/ServiceRequest', { body: request, headers });
    expect(first.status).toBe(201);
    const again = await service.fhir('/ServiceRequest', { body: request, headers });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);

    const found = await service.fhir(`/ServiceRequest?identifier=${encodeURIComponent(`${identifier.system}|${identifier.value}`)}`);
    expect(found.body.total).toBe(1);
    expect(found.body.entry[0].resource.id).toBe(first.body.id);
    const category = request.category[0].coding[0];
    const byCategory = await service.fhir(`/ServiceRequest?category=${encodeURIComponent(`${category.system}|${category.code}`)}`);
    expect(byCategory.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toContain(first.body.id);
  });

  it('refuses a request without the second-opinion category with 422 naming the rule, storing nothing', async () => {
    const broken = { ...request, identifier: [{ system: 'https://ehr.example/orders', value: 'NO-CATEGORY' }] };
    delete broken.category;
    const res = await service.fhir('/ServiceRequest', { body: broken });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toMatch(/^ServiceRequest/);
    expect((await service.fhir('/ServiceRequest?identifier=NO-CATEGORY')).body.total).toBe(0);
  });
});
