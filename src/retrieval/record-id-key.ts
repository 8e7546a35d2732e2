// The key that makes the ids of records copied from institutions (source-records.ts localId). It must
// be the same for every process on one database and across restarts, or a re-pull would store a
// second copy: production sets RECORD_ID_KEY (or RECORD_ID_KEY_FILE); the embedded default keeps a
// random key beside its database in DATA_DIR, made on the first start.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { useRecordIdKey } from './source-records.js';

const leastBytes = 16;

export function loadRecordIdKey(config: Config, log: Logger): void {
  if (config.recordIdKey !== undefined) {
    if (Buffer.byteLength(config.recordIdKey) < leastBytes) throw new Error(`RECORD_ID_KEY must be at least ${leastBytes} bytes`);
    useRecordIdKey(Buffer.from(config.recordIdKey));
    return;
  }
  const file = path.join(config.dataDir, 'record-id.key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    try {
      writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err; // another process made it first
    }
  }
  if (config.mongodbUri) log.warn('RECORD_ID_KEY is not set: using the key in DATA_DIR; every process on this database must share it');
  useRecordIdKey(Buffer.from(readFileSync(file, 'utf8').trim()));
}
