// The ids (jti) of client assertions already used at the token endpoint, each kept until its
// assertion has expired, so that none is accepted twice. Expired ids are deleted here, at most once a
// minute, as new ones come in (by the expiresAt index).
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOf } from './model-of.js';

interface UsedAssertion {
  _id: string; // client_id and jti
  expiresAt: Date;
}

const purgeEveryMs = 60_000;

export class UsedAssertions {
  private readonly used: Model<UsedAssertion>;
  private lastPurge = 0;

  constructor(connection: Connection) {
    const schema = new Schema<UsedAssertion>({ _id: String, expiresAt: Date }, { versionKey: false, collection: 'auth_used_assertions' });
    schema.index({ expiresAt: 1 });
    this.used = modelOf(connection, 'UsedAssertion', schema);
  }

  async init(): Promise<void> {
    await this.used.createIndexes();
  }

  /** Records the assertion `jti` of `clientId` as used; false when it was used before. */
  async use(clientId: string, jti: string, expiresAt: Date): Promise<boolean> {
    await this.purgeExpired();
    try {
      await this.used.collection.insertOne({ _id: JSON.stringify([clientId, jti]), expiresAt } as never);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 11000) return false;
      throw err;
    }
  }

  private async purgeExpired(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPurge < purgeEveryMs) return;
    this.lastPurge = now;
    await this.used.deleteMany({ expiresAt: { $lt: new Date(now) } });
  }
}
