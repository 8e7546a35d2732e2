// Search as an EHR and the workflow use it: by identifier, patient, status, dates; paging; includes.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestService, type TestService } from './harness.js';

let service: TestService;
const ids: Record<string, string> = {};

beforeAll(async () => {
  service = await startTestService();
  const create = async (key: string, body: Record<string, unknown>): Promise<void> => {
    const res = await service.fhir(`/${body.resourceType}`, { body });
    expect(res.status).toBe(201);
    ids[key] = res.body.id;
  };
  await create('patient', { resourceType: 'Patient', name: [{ family: 'Müller', given: ['Ada'] }], birthDate: '1961-03-05' });
  await create('other', { resourceType: 'Patient', name: [{ family: 'Smith' }], birthDate: '1990-01-01' });
  for (let i = 0; i < 3; i++) {
    await create(`sr${i}`, {
      resourceType: 'ServiceRequest',
      identifier: [{ system: 'https://ehr.example/orders', value: `ORD-${i}` }],
      status: i === 2 ? 'completed' : 'active',
      intent: 'order',
      category: [{ coding: [{ system: 'http://snomed.info/sct', code: '103696004' }] }],
      code: { coding: [{ system: 'http://snomed.info/sct', code: '371530004' }] },
      subject: { reference: `Patient/${ids[i === 1 ? 'other' : 'patient']}` },
      authoredOn: `2026-0${i + 1}-15`,
    });
  }
  await create('task', {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    focus: { reference: `ServiceRequest/${ids.sr0}` },
    for: { reference: `Patient/${ids.patient}` },
    basedOn: [{ reference: `ServiceRequest/${ids.sr0}` }],
  });
  await create('report', {
    resourceType: 'DiagnosticReport',
    status: 'final',
    code: { text: 'Second opinion' },
    subject: { reference: `Patient/${ids.patient}` },
    basedOn: [{ reference: `ServiceRequest/${ids.sr0}` }],
  });
});
afterAll(async () => {
  await service?.stop();
});

const matchIds = (bundle: { entry?: { resource: { id: string }; search: { mode: string } }[] }): string[] =>
  (bundle.entry ?? [])
    .filter((e) => e.search.mode === 'match')
    .map((e) => e.resource.id)
    .sort();

describe('search', () => {
  it('finds by identifier, with or without the system', async () => {
    const full = await service.fhir('/ServiceRequest?identifier=https://ehr.example/orders|ORD-1');
    expect(full.status).toBe(200);
    expect(full.body.resourceType).toBe('Bundle');
    expect(full.body.type).toBe('searchset');
    expect(full.body.total).toBe(1);
    expect(matchIds(full.body)).toEqual([ids.sr1]);
    expect((await service.fhir('/ServiceRequest?identifier=ORD-2')).body.total).toBe(1);
    expect((await service.fhir('/ServiceRequest?identifier=https://ehr.example/orders|')).body.total).toBe(3);
    expect((await service.fhir('/ServiceRequest?identifier=other|ORD-1')).body.total).toBe(0);
  });

  it('finds by patient and subject, relative or typed', async () => {
    expect(matchIds((await service.fhir(`/ServiceRequest?subject=Patient/${ids.patient}`)).body)).toEqual([ids.sr0, ids.sr2].sort());
    expect(matchIds((await service.fhir(`/ServiceRequest?patient=${ids.patient}`)).body)).toEqual([ids.sr0, ids.sr2].sort());
    expect(matchIds((await service.fhir(`/ServiceRequest?subject:Patient=${ids.other}`)).body)).toEqual([ids.sr1]);
  });

  it('finds by status, category, code, based-on, and their combinations', async () => {
    expect((await service.fhir('/ServiceRequest?status=active')).body.total).toBe(2);
    expect((await service.fhir('/ServiceRequest?status=active,completed')).body.total).toBe(3);
    expect((await service.fhir('/ServiceRequest?status:not=active')).body.total).toBe(1);
    expect((await service.fhir('/ServiceRequest?category=http://snomed.info/sct|103696004&status=completed')).body.total).toBe(1);
    expect((await service.fhir('/ServiceRequest?code=371530004')).body.total).toBe(3);
    expect(matchIds((await service.fhir(`/DiagnosticReport?based-on=ServiceRequest/${ids.sr0}`)).body)).toEqual([ids.report]);
    expect(matchIds((await service.fhir(`/Task?focus=ServiceRequest/${ids.sr0}`)).body)).toEqual([ids.task]);
  });

  it('finds by _id, by dates with prefixes, and by name', async () => {
    expect(matchIds((await service.fhir(`/ServiceRequest?_id=${ids.sr1}`)).body)).toEqual([ids.sr1]);
    expect((await service.fhir('/ServiceRequest?authored=ge2026-02')).body.total).toBe(2);
    expect((await service.fhir('/ServiceRequest?authored=lt2026-02-01')).body.total).toBe(1);
    expect((await service.fhir('/ServiceRequest?authored=2026-03-15')).body.total).toBe(1);
    expect((await service.fhir('/Patient?birthdate=1961')).body.total).toBe(1);
    expect((await service.fhir('/Patient?name=muller')).body.total).toBe(1);
    const now = new Date().toISOString();
    expect((await service.fhir(`/ServiceRequest?_lastUpdated=gt${encodeURIComponent(now)}`)).body.total).toBe(0);
    expect((await service.fhir('/ServiceRequest?_lastUpdated=ge2026-01-01')).body.total).toBe(3);
  });

  it('sorts', async () => {
    const asc = await service.fhir('/ServiceRequest?_sort=authored');
    expect(asc.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([ids.sr0, ids.sr1, ids.sr2]);
    const desc = await service.fhir('/ServiceRequest?_sort=-authored');
    expect(desc.body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([ids.sr2, ids.sr1, ids.sr0]);
  });

  it('_include follows references and _revinclude finds what points back', async () => {
    const res = await service.fhir(
      `/ServiceRequest?_id=${ids.sr0}&_include=ServiceRequest:subject&_revinclude=Task:focus&_revinclude=DiagnosticReport:based-on`,
    );
    const included = res.body.entry
      .filter((e: { search: { mode: string } }) => e.search.mode === 'include')
      .map((e: { resource: { resourceType: string; id: string } }) => `${e.resource.resourceType}/${e.resource.id}`);
    expect(included.sort()).toEqual([`DiagnosticReport/${ids.report}`, `Patient/${ids.patient}`, `Task/${ids.task}`].sort());
    expect(res.body.total).toBe(1);
  });

  it('_summary=count answers the total only', async () => {
    const res = await service.fhir('/ServiceRequest?_summary=count');
    expect(res.body.total).toBe(3);
    expect(res.body.entry ?? []).toHaveLength(0);
  });

  it('POST _search answers the same as GET', async () => {
    const res = await service.fhir('/ServiceRequest/_search', {
      method: 'POST',
      body: 'status=active',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(2);
  });
});

describe('paging through a large result set', () => {
  it('follows next links over 250 resources, each exactly once, and back with previous', async () => {
    const tag = `batch-${Date.now()}`;
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: Array.from({ length: 250 }, (_, i) => ({
        resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:test', code: tag }] }, valueInteger: i },
        request: { method: 'POST', url: 'Observation' },
      })),
    };
    const created = await service.fhir('', { body: bundle });
    expect(created.status).toBe(200);
    expect(created.body.entry.every((e: { response: { status: string } }) => e.response.status.startsWith('201'))).toBe(true);

    const seen: number[] = [];
    // The total is counted on demand; the next links keep asking for it.
    let url: string | undefined = `${service.base}/Observation?code=urn:test|${tag}&_count=40&_total=accurate`;
    let pages = 0;
    let last: { link: { relation: string; url: string }[] } | undefined;
    while (url) {
      const page = await service.fhir(url);
      expect(page.status).toBe(200);
      expect(page.body.total).toBe(250);
      seen.push(...page.body.entry.map((e: { resource: { valueInteger: number } }) => e.resource.valueInteger));
      last = page.body;
      url = page.body.link.find((l: { relation: string }) => l.relation === 'next')?.url;
      pages++;
    }
    expect(pages).toBe(7);
    expect(seen).toHaveLength(250);
    expect(new Set(seen).size).toBe(250);
    const previous = last?.link.find((l) => l.relation === 'previous')?.url;
    expect(previous).toBeDefined();
    const back = await service.fhir(previous as string);
    expect(back.body.entry).toHaveLength(40);

    // Unasked, a full page states no total (it would cost a count of every match); the last page
    // states it, since it is known; _total=none never states it.
    const first = await service.fhir(`/Observation?code=urn:test|${tag}&_count=40`);
    expect([first.body.total, first.body.entry.length, first.body.link.some((l: { relation: string }) => l.relation === 'next')]).toEqual([
      undefined,
      40,
      true,
    ]);
    const lastPage = await service.fhir(`/Observation?code=urn:test|${tag}&_count=40&_offset=240`);
    expect([lastPage.body.total, lastPage.body.entry.length, lastPage.body.link.some((l: { relation: string }) => l.relation === 'next')]).toEqual([
      250,
      10,
      false,
    ]);
    expect((await service.fhir(`/Observation?code=urn:test|${tag}&_count=40&_offset=240&_total=none`)).body.total).toBeUndefined();
    expect((await service.fhir(`/Observation?code=urn:test|${tag}&_summary=count`)).body.total).toBe(250);
  });
});

describe('a page of the newest matches, asked again and again (a work queue)', () => {
  it('always answers the newest matches, as they arrive, leave the filter, change and are deleted', async () => {
    const tag = `queue-${Date.now()}`;
    const order: string[] = []; // newest first
    const add = async (i: number): Promise<void> => {
      const res = await service.fhir('/Observation', {
        body: { resourceType: 'Observation', status: 'preliminary', code: { coding: [{ system: 'urn:queue', code: tag }] }, valueInteger: i },
      });
      expect(res.status).toBe(201);
      order.unshift(res.body.id);
    };
    const page = async (): Promise<string[]> => {
      const res = await service.fhir(`/Observation?code=urn:queue|${tag}&_count=5`);
      expect(res.status).toBe(200);
      return res.body.entry.map((e: { resource: { id: string } }) => e.resource.id);
    };
    for (let i = 0; i < 12; i++) await add(i);
    expect(await page()).toEqual(order.slice(0, 5));
    expect(await page()).toEqual(order.slice(0, 5));

    // Two of the page leave the filter (their code changes): the next newest take their places.
    for (const id of order.splice(1, 2)) {
      const current = (await service.fhir(`/Observation/${id}`)).body;
      expect(
        (await service.fhir(`/Observation/${id}`, { method: 'PUT', body: { ...current, code: { coding: [{ system: 'urn:queue', code: `${tag}-done` }] } } }))
          .status,
      ).toBe(200);
    }
    expect(await page()).toEqual(order.slice(0, 5));

    // One is deleted, one new arrives, and an old one is updated (which makes it the newest).
    expect((await service.fhir(`/Observation/${order[3]}`, { method: 'DELETE' })).status).toBeLessThan(300);
    order.splice(3, 1);
    await add(12);
    const old = order.pop() as string;
    const current = (await service.fhir(`/Observation/${old}`)).body;
    expect((await service.fhir(`/Observation/${old}`, { method: 'PUT', body: { ...current, status: 'final' } })).status).toBe(200);
    order.unshift(old);
    expect(await page()).toEqual(order.slice(0, 5));
    // The last page, beyond what was remembered, holds the rest and says how many there are.
    const rest = await service.fhir(`/Observation?code=urn:queue|${tag}&_count=5&_offset=5`);
    expect([rest.body.entry.map((e: { resource: { id: string } }) => e.resource.id), rest.body.total]).toEqual([order.slice(5), order.length]);
  });
});
