// Cursors that outlive a process: how far a repeated pull from another server has got
// (per patient and record type for retrieval, per institution for polling).
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOf } from './model-of.js';

interface Cursor {
  _id: string;
  value: Date;
}

export class CursorStore {
  private readonly cursors: Model<Cursor>;

  constructor(connection: Connection) {
    const schema = new Schema<Cursor>({ _id: String, value: Date }, { versionKey: false, collection: 'cursors' });
    this.cursors = modelOf(connection, 'Cursor', schema);
  }

  async get(key: string): Promise<Date | undefined> {
    return (await this.cursors.findById(key).lean<Cursor>())?.value;
  }

  /** Moves the cursor forward only: a slower, older pull never sets it back. */
  async advance(key: string, value: Date): Promise<void> {
    try {
      await this.cursors.updateOne({ _id: key, value: { $lt: value } }, { $set: { value } }, { upsert: true });
    } catch (err) {
      // The upsert raced with an existing, newer cursor: nothing to do.
      if ((err as { code?: number }).code !== 11000) throw err;
    }
  }
}
