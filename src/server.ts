// Assembles the service: database, store, FHIR service, the stages of a case, HTTP; used by main and tests.
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { AuditTrail } from './access/audit.js';
import { startAuthentication } from './auth/authentication.js';
import { loadConformance } from './conformance/artifacts.js';
import { openDatabase, type Database } from './database/connect.js';
import { fhirRouter } from './fhir/router.js';
import { httpApp } from './http/app.js';
import { attachmentRoutes } from './http/attachments.js';
import { listen } from './http/listen.js';
import { loadSigningKey } from './outbound/authorization.js';
import { loadRecordIdKey } from './retrieval/record-id-key.js';
import type { ReviewWorkflow } from './review/workflow.js';
import { buildService } from './service.js';
import { buildStages } from './stages.js';
import type { JobQueue } from './store/jobs.js';
import { createModels, ensureIndexes } from './store/models.js';
import { Transactions } from './store/transactions.js';
import { installWorkbench } from './workbench/install.js';

export interface RunningServer {
  url: string;
  database: Database;
  jobs: JobQueue;
  review: ReviewWorkflow;
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const conformance = loadConformance();
  loadRecordIdKey(config, log);
  const database = await openDatabase(config, log);
  try {
    const models = createModels(database.connection);
    await ensureIndexes(models);
    const auth = await startAuthentication(config, database.connection, log);
    const signingKey = await loadSigningKey(config.smartKey);
    const { service, institutions } = buildService(models, conformance, config.baseUrl, signingKey, await Transactions.of(database.connection));
    const audit = new AuditTrail(service.repository, conformance, config.baseUrl, log);
    const workbench = await installWorkbench(config, database.connection, conformance, auth, audit, log);
    const stages = await buildStages({ config, log, conformance, database, models, service, institutions, auth });
    const { maxBodyBytes, maxJsonDepth } = config;
    const app = httpApp(config, log, {
      database,
      auth,
      audit,
      workbench: workbench.routes,
      publicKeys: [...(signingKey ? [signingKey.publicJwk] : []), stages.signer.publicJwk, auth.publicJwk],
      attachments: attachmentRoutes(stages.attachments, service.repository, auth),
      bulk: stages.bulkExport.routes,
      outcomes: stages.outcomes.routes,
      fhir: fhirRouter(service, stages.operations, { maxBodyBytes, maxJsonDepth, log, authorize: auth.authorizeFhir }),
    });
    const listening = await listen(app, config, log);
    await stages.start();
    const close = async (): Promise<void> => {
      await listening.close();
      await audit.drain();
      await stages.stop();
      await database.close();
    };
    return { url: listening.url, database, jobs: stages.jobs, review: stages.review, close };
  } catch (err) {
    await database.close();
    throw err;
  }
}
