// Failed sign-ins counted by key (an account, an address) over a window that starts at the first
// failure (auth/sign-in-limits.ts). In the database, so every process counts the same; a document
// is removed by MongoDB once its window has ended.
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOf } from './model-of.js';

interface FailureCount {
  _id: string;
  count: number;
  /** The end of the window; a count read after it is none. */
  expiresAt: Date;
}

export class SignInFailureStore {
  private readonly failures: Model<FailureCount>;

  constructor(connection: Connection) {
    const schema = new Schema<FailureCount>({ _id: String, count: Number, expiresAt: Date }, { versionKey: false, collection: 'auth_sign_in_failures' });
    schema.index({ expiresAt: 1 }, { expireAfterSeconds: 0 });
    this.failures = modelOf(connection, 'SignInFailure', schema);
  }

  async init(): Promise<void> {
    await this.failures.createIndexes();
  }

  /** The failures counted under each key in its current window, and when the longest of those windows ends. */
  async counts(keys: string[]): Promise<{ counts: number[]; until?: Date }> {
    const now = new Date();
    const found = await this.failures.find({ _id: { $in: keys }, expiresAt: { $gt: now } }).lean<FailureCount[]>();
    const until = found.map((f) => f.expiresAt).sort((a, b) => b.getTime() - a.getTime())[0];
    return { counts: keys.map((key) => found.find((f) => f._id === key)?.count ?? 0), until };
  }

  /** One more failure under each key; a window that has ended starts again. */
  async add(keys: string[], windowSeconds: number): Promise<void> {
    const now = new Date();
    await this.failures.deleteMany({ _id: { $in: keys }, expiresAt: { $lte: now } });
    await Promise.all(
      keys.map((_id) =>
        this.failures.updateOne({ _id }, { $inc: { count: 1 }, $setOnInsert: { expiresAt: new Date(now.getTime() + windowSeconds * 1000) } }, { upsert: true }),
      ),
    );
  }

  async clear(key: string): Promise<void> {
    await this.failures.deleteOne({ _id: key });
  }
}
