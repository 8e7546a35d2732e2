// The conformance artifacts in profiles/ are data the service obeys: every example gets the verdict
// it claims, through $validate and through a real create, and every artifact sits under one canonical.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { defaultProfilesDir } from '../src/conformance/artifacts.js';
import { startTestService, type TestService } from './harness.js';

const dir = defaultProfilesDir();
const readJson = (file: string): any => JSON.parse(readFileSync(file, 'utf8'));
const examples = (kind: 'valid' | 'invalid'): string[] =>
  readdirSync(path.join(dir, 'examples', kind))
    .filter((f) => f.endsWith('.json') && f !== 'expected.json')
    .sort();
const expected: Record<string, { expression: string; rule: string }> = readJson(path.join(dir, 'examples', 'invalid', 'expected.json'));

let service: TestService;
/** The stored records the examples' references stand for (`Patient/example-patient` -> a stored Patient): a write names only records that exist. */
const stand = new Map<string, string>();
/** An example as stored here: its references to example records point at the stored ones. */
const stored = (example: unknown): any =>
  JSON.parse(
    JSON.stringify(example).replace(/"reference":"([A-Za-z]+\/example-[a-z-]+)"/g, (all, ref: string) =>
      stand.has(ref) ? `"reference":"${stand.get(ref)}"` : all,
    ),
  );

beforeAll(async () => {
  service = await startTestService();
  const make = async (example: string, body: Record<string, unknown>): Promise<{ reference: string }> => {
    const created = await service.fhir(`/${body.resourceType}`, { body });
    expect(created.status).toBe(201);
    stand.set(example, `${body.resourceType}/${created.body.id}`);
    return { reference: `${body.resourceType}/${created.body.id}` };
  };
  const subject = await make('Patient/example-patient', { resourceType: 'Patient', name: [{ family: 'Example' }] });
  const focus = await make('ServiceRequest/example-request', { resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject });
  await make('Task/example-task', { resourceType: 'Task', status: 'requested', intent: 'order', focus, for: subject });
  await make('Communication/example-question', { resourceType: 'Communication', status: 'completed', subject, basedOn: [focus] });
});
afterAll(async () => {
  await service?.stop();
});

describe('profiles/', () => {
  it('names one canonical base, and every artifact lives under it', () => {
    const { canonical } = readJson(path.join(dir, 'package.json'));
    expect(canonical).toMatch(/^https?:\/\//);
    const artifacts = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'package.json');
    expect(artifacts.length).toBeGreaterThan(10);
    for (const file of artifacts) {
      expect(readJson(path.join(dir, file)).url).toMatch(new RegExp(`^${canonical.replace(/[.]/g, '\\.')}/`));
    }
  });

  it('has valid and invalid examples of each of the four profiles', () => {
    for (const type of ['ServiceRequest', 'Task', 'DiagnosticReport', 'Communication']) {
      expect(examples('valid').filter((f) => readJson(path.join(dir, 'examples', 'valid', f)).resourceType === type).length).toBeGreaterThanOrEqual(2);
      expect(examples('invalid').filter((f) => readJson(path.join(dir, 'examples', 'invalid', f)).resourceType === type).length).toBeGreaterThanOrEqual(2);
    }
    expect(Object.keys(expected).sort()).toEqual(examples('invalid'));
  });

  it.each(examples('valid'))('valid example %s passes $validate and is stored', async (file) => {
    const resource = readJson(path.join(dir, 'examples', 'valid', file));
    const verdict = await service.fhir(`/${resource.resourceType}/$validate`, { body: resource });
    expect(verdict.status).toBe(200);
    expect(verdict.body.issue.filter((i: { severity: string }) => i.severity === 'error')).toEqual([]);
    const created = await service.fhir(`/${resource.resourceType}`, { body: stored(resource) });
    expect(created.status).toBe(201);
  });

  it('$validate at instance level checks the stored resource, or the one given, against a named profile', async () => {
    const task = stored(readJson(path.join(dir, 'examples', 'valid', 'Task-requested.json')));
    const storedTask = (await service.fhir('/Task', { body: task })).body;
    const ok = await service.fhir(`/Task/${storedTask.id}/$validate`, { body: { resourceType: 'Parameters', parameter: [] } });
    expect(ok.status).toBe(200);
    expect(ok.body.issue.filter((i: { severity: string }) => i.severity === 'error')).toEqual([]);

    const plain = { resourceType: 'Task', status: 'requested', intent: 'order' };
    const profile = task.meta.profile[0];
    const verdict = await service.fhir(`/Task/${storedTask.id}/$validate`, {
      body: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'resource', resource: plain },
          { name: 'profile', valueCanonical: profile },
        ],
      },
    });
    expect(verdict.status).toBe(200);
    expect(verdict.body.issue.flatMap((i: { expression?: string[] }) => i.expression ?? [])).toEqual(expect.arrayContaining(['Task.focus', 'Task.for']));

    const unknown = await service.fhir('/Task/$validate', { body: { resourceType: 'Parameters', parameter: [{ name: 'colour', valueString: 'red' }] } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.issue[0].expression).toEqual(['Parameters.parameter[0].name']);
    expect((await service.fhir(`/Task/${storedTask.id}`)).body.meta.versionId).toBe('1');
  });

  it('$validate with the resource as the body takes profile and mode from the URL; a profile it cannot check answers 400', async () => {
    const plain = { resourceType: 'Task', status: 'requested', intent: 'order' };
    const profile = readJson(path.join(dir, 'examples', 'valid', 'Task-requested.json')).meta.profile[0];
    const verdict = await service.fhir(`/Task/$validate?profile=${encodeURIComponent(profile)}&mode=profile`, { body: plain });
    expect(verdict.status).toBe(200);
    expect(verdict.body.issue.flatMap((i: { expression?: string[] }) => i.expression ?? [])).toEqual(expect.arrayContaining(['Task.focus', 'Task.for']));
    for (const [query, expression] of [
      ['profile=https%3A%2F%2Felsewhere.example%2FStructureDefinition%2Fx', 'profile'],
      ['mode=profile', 'profile'],
      ['mode=bogus', 'mode'],
      ['profile=a&profile=b', 'profile'],
    ]) {
      const refused = await service.fhir(`/Task/$validate?${query}`, { body: plain });
      expect([query, refused.status, refused.body.issue[0].expression]).toEqual([query, 400, [expression]]);
    }
    const both = await service.fhir(`/Task/$validate?mode=create`, {
      body: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: plain }] },
    });
    expect([both.status, both.body.issue[0].expression]).toEqual([400, ['Parameters']]);
  });

  it.each(examples('invalid'))('invalid example %s is refused, naming the element', async (file) => {
    const resource = readJson(path.join(dir, 'examples', 'invalid', file));
    const { expression } = expected[file];
    const before = (await service.fhir(`/${resource.resourceType}?_summary=count`)).body.total;

    const verdict = await service.fhir(`/${resource.resourceType}/$validate`, {
      body: { resourceType: 'Parameters', parameter: [{ name: 'resource', resource }] },
    });
    expect(verdict.status).toBe(200);
    const errors = verdict.body.issue.filter((i: { severity: string }) => i.severity === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.flatMap((i: { expression?: string[] }) => i.expression ?? []).some((e: string) => e.startsWith(expression))).toBe(true);

    const created = await service.fhir(`/${resource.resourceType}`, { body: resource });
    expect(created.status).toBe(422);
    expect(created.body.issue.flatMap((i: { expression?: string[] }) => i.expression ?? []).some((e: string) => e.startsWith(expression))).toBe(true);
    expect((await service.fhir(`/${resource.resourceType}?_summary=count`)).body.total).toBe(before);
  });
});
