// Attachment content retrieved from referring institutions (document bodies, report renderings),
// kept in GridFS under an id derived from where it came from, so a re-pull stores it once.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mongo, type Connection } from 'mongoose';

export interface StoredAttachment {
  contentType: string;
  length: number;
  /** Where it came from (the Binary's URL at the institution). */
  source?: string;
  /** Who may read it: the institution it came from and its patient's chart (see access/ownership.ts). */
  access: string[];
  stream(): Readable;
}

export class AttachmentStore {
  private readonly bucket: mongo.GridFSBucket;

  constructor(connection: Connection) {
    this.bucket = new mongo.GridFSBucket(connection.db as never, { bucketName: 'attachments' });
  }

  async has(id: string): Promise<boolean> {
    return (
      (
        await this.bucket
          .find({ _id: id } as never)
          .limit(1)
          .toArray()
      ).length > 0
    );
  }

  /** Stores `data` at `id` unless it is there already (same id, same source: same content). */
  async put(id: string, data: Buffer, contentType: string, source: string, access: string[]): Promise<void> {
    if (await this.has(id)) return;
    const upload = this.bucket.openUploadStreamWithId(id as never, id, { metadata: { contentType, source, access } });
    try {
      await pipeline(Readable.from([data]), upload);
    } catch (err) {
      // A racing copy of the same retrieval stored it first: that copy is the same bytes.
      if ((err as { code?: number }).code !== 11000) throw err;
    }
  }

  async get(id: string): Promise<StoredAttachment | undefined> {
    const [file] = await this.bucket
      .find({ _id: id } as never)
      .limit(1)
      .toArray();
    if (!file) return undefined;
    return {
      contentType: (file.metadata?.contentType as string | undefined) ?? 'application/octet-stream',
      length: file.length,
      source: file.metadata?.source as string | undefined,
      access: (file.metadata?.access as string[] | undefined) ?? [],
      stream: () => this.bucket.openDownloadStream(id as never),
    };
  }
}
