// What a Bulk Data export reads and writes in the database: resources of a type read with a cursor a
// batch at a time, and the NDJSON files it produces, kept in GridFS and streamed back from there.
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { mongo, type Connection } from 'mongoose';
import type { Resource } from '@medplum/fhirtypes';
import type { Models, StoredResource } from './models.js';

/** An NDJSON file being written: lines are gathered into pieces and handed to GridFS with backpressure. */
export interface ExportFileWriter {
  readonly id: string;
  count: number;
  write(line: string): Promise<void>;
  close(): Promise<void>;
}

const pieceSize = 256 * 1024;

export class ExportFiles {
  private readonly bucket: mongo.GridFSBucket;

  constructor(
    connection: Connection,
    private readonly models: Models,
  ) {
    this.bucket = new mongo.GridFSBucket(connection.db as never, { bucketName: 'exports' });
  }

  /** Current resources of `type` matching `where`, a batch at a time. */
  async *resources(type: string, where: Record<string, unknown> = {}): AsyncGenerator<Resource> {
    const filter = { deleted: false, ...where };
    // Large batches: fewer round trips for files of many resources.
    const cursor = this.models.resources(type).find(filter, { resource: 1 }).lean<StoredResource>().cursor({ batchSize: 2000 });
    for await (const doc of cursor) yield doc.resource as Resource;
  }

  /** A new file `id`, written by attempt `attempt` of export `job`. */
  create(id: string, job: string, attempt: number): ExportFileWriter {
    const upload = this.bucket.openUploadStreamWithId(id as never, id, { metadata: { job, attempt, contentType: 'application/fhir+ndjson' } });
    let pending = '';
    const flush = async (): Promise<void> => {
      const piece = pending;
      pending = '';
      if (piece && !upload.write(piece)) await once(upload, 'drain');
    };
    return {
      id,
      count: 0,
      async write(line: string) {
        pending += `${line}\n`;
        this.count++;
        if (pending.length >= pieceSize) await flush();
      },
      async close() {
        await flush();
        await new Promise<void>((resolve, reject) => {
          upload.once('error', reject);
          upload.end(() => resolve());
        });
      },
    };
  }

  async open(id: string): Promise<{ length: number; stream(): Readable } | undefined> {
    const [file] = await this.bucket
      .find({ _id: id } as never)
      .limit(1)
      .toArray();
    return file ? { length: file.length, stream: () => this.bucket.openDownloadStream(id as never) } : undefined;
  }

  /** Removes the files of export `job`: those of one attempt, or of all. */
  async remove(job: string, attempt?: number): Promise<void> {
    const files = await this.bucket.find({ 'metadata.job': job, ...(attempt === undefined ? {} : { 'metadata.attempt': attempt }) }).toArray();
    for (const file of files) {
      await this.bucket.delete(file._id).catch((err: { code?: string }) => {
        if (err.code !== 'ENOENT' && !/not found/i.test(String((err as Error).message))) throw err;
      });
    }
  }
}
