// The service's HTTP server: listening on the configured host and port, and closing.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';

export interface Listening {
  /** Where this machine reaches the service. */
  url: string;
  /** Stops taking connections, ends the idle ones, and resolves when the open ones have ended. */
  close(): Promise<void>;
}

export async function listen(app: Express, config: Pick<Config, 'host' | 'port'>, log: Logger): Promise<Listening> {
  // Not app.listen: express 5 calls its callback on a listen error too, as if listening had begun.
  const server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  // Listening on every interface, the service is reached here on the loopback one.
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  log.info({ port }, 'second-opinion service listening');
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  return { url: `http://${host}:${port}`, close };
}
