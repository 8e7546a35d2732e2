// What the crash tests build on: the peer EHR behind the fault proxy, and the service as its own
// process on one port and one database, to be killed with SIGKILL and started again.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import { freePort } from '../src/database/local-server.js';
import { spawnedFhir, spawnService, type TestService } from './harness.js';
import { registerInstitution } from './review-cases.js';
import { startFaultProxy, type FaultProxy } from '../scripts/peer/fault-proxy.js';
import { startReferringEhr, type ReferringEhr } from '../scripts/peer/referring-ehr.js';

export interface CrashFixture {
  ehr: ReferringEhr;
  proxy: FaultProxy;
  /** FHIR calls to the service, whichever of its processes is running. */
  fhir: TestService['fhir'];
  /** Starts the service (again) with the fixture's environment; answers once it is ready. */
  start(): Promise<ChildProcess>;
  /** The service's database. */
  databaseName: string;
}

export function crashFixture(name: string, env: Record<string, string>): CrashFixture {
  const running: ChildProcess[] = [];
  const databaseName = `test-${name}-${randomUUID().slice(0, 8)}`;
  let port = 0;
  let registered = false;
  const fixture = {
    databaseName,
    start: async () => {
      const child = await spawnService(port, { DATABASE_NAME: databaseName, ...env });
      running.push(child);
      // The EHR, through the proxy, is a registered institution (kept in the database across restarts).
      if (!registered) await registerInstitution({ fhir: fixture.fhir }, 'Referring Hospital', fixture.proxy.base);
      registered = true;
      return child;
    },
  } as CrashFixture;
  beforeAll(async () => {
    fixture.ehr = await startReferringEhr();
    fixture.proxy = await startFaultProxy(fixture.ehr.base);
    port = await freePort();
    fixture.fhir = spawnedFhir(port);
  });
  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await fixture.proxy?.stop();
    await fixture.ehr?.stop();
  });
  return fixture;
}
