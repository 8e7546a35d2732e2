// Entry point: `npm start`. Configuration from the environment; stops cleanly on SIGTERM and SIGINT.
import { loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { startServer } from './server.js';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  // A setting the operator must fix: one plain line, no stack.
  process.stderr.write(`Configuration: ${(err as Error).message}\n`);
  process.exit(1);
}
const log = createLogger(config.logLevel);

try {
  const server = await startServer(config, log);
  log.info({ fhir: `${config.baseUrl}/fhir` }, 'ready');
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
} catch (err) {
  // Start-up failures are for a person setting the service up: plain text on stderr as well.
  log.fatal((err as Error).message.split('\n')[0]);
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
