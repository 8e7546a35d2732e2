// Opens the service's store: MONGODB_URI when given, else a local server the service starts itself.
import mongoose, { type Connection } from 'mongoose';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { startLocalServer, type LocalServer } from './local-server.js';

export interface Database {
  connection: Connection;
  engine: string;
  /** True while the server answers a ping: the readiness probe. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  let local: LocalServer | undefined;
  let uri = config.mongodbUri;
  if (!uri) {
    local = await startLocalServer(config.dataDir, log);
    uri = local.uri;
  }
  const connection = mongoose.createConnection(uri, {
    dbName: config.databaseName,
    // How long an operation waits for a reachable server before it fails; a URI that sets its own keeps it.
    ...(/[?&]serverSelectionTimeoutMS=/i.test(uri) ? {} : { serverSelectionTimeoutMS: 10_000 }),
    autoIndex: false,
  });
  try {
    await connection.asPromise();
  } catch (err) {
    await local?.stop();
    throw new Error(`cannot reach the database: ${(err as Error).message}`);
  }
  log.info({ engine: local?.engine ?? 'external', database: config.databaseName }, 'database connected');
  return {
    connection,
    engine: local?.engine ?? 'external',
    ping: async () => {
      try {
        await connection.db?.admin().command({ ping: 1 });
        return true;
      } catch {
        return false;
      }
    },
    close: async () => {
      await connection.close();
      await local?.stop();
    },
  };
}
