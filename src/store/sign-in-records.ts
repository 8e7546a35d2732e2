// What the people's authorization server (auth/sign-in.ts, oidc-provider) keeps between requests:
// sessions, interactions, authorization codes, grants, refresh tokens. One collection, one document
// per record, removed by a TTL index when it expires, so every service process on the database sees
// the same sign-ins. The shape is oidc-provider's adapter interface.
import { Schema, type Connection, type Model } from 'mongoose';

interface SignInRecord {
  _id: string; // `${kind}:${id}`
  kind: string;
  payload: Record<string, unknown>;
  grantId?: string;
  uid?: string;
  userCode?: string;
  expiresAt?: Date;
}

export interface SignInPayload extends Record<string, unknown> {
  grantId?: string;
  uid?: string;
  userCode?: string;
  consumed?: number;
}

function modelOf(connection: Connection): Model<SignInRecord> {
  if (connection.models.SignInRecord) return connection.models.SignInRecord as Model<SignInRecord>;
  const schema = new Schema<SignInRecord>(
    { _id: String, kind: String, payload: Schema.Types.Mixed, grantId: String, uid: String, userCode: String, expiresAt: Date },
    { versionKey: false, minimize: false, collection: 'auth_sign_in' },
  );
  schema.index({ expiresAt: 1 }, { expireAfterSeconds: 0 });
  schema.index({ grantId: 1 }, { sparse: true });
  schema.index({ uid: 1 }, { sparse: true });
  return connection.model('SignInRecord', schema);
}

/** The records of one kind (oidc-provider's model name: Session, AuthorizationCode, Grant...). */
export class SignInRecords {
  private readonly records: Model<SignInRecord>;

  constructor(
    connection: Connection,
    private readonly kind: string,
  ) {
    this.records = modelOf(connection);
  }

  static async init(connection: Connection): Promise<void> {
    await modelOf(connection).createIndexes();
  }

  private key(id: string): string {
    return `${this.kind}:${id}`;
  }

  async upsert(id: string, payload: SignInPayload, expiresIn?: number): Promise<void> {
    const { grantId, uid, userCode } = payload;
    await this.records.replaceOne(
      { _id: this.key(id) },
      {
        kind: this.kind,
        payload,
        ...(grantId ? { grantId } : {}),
        ...(uid ? { uid } : {}),
        ...(userCode ? { userCode } : {}),
        ...(expiresIn ? { expiresAt: new Date(Date.now() + expiresIn * 1000) } : {}),
      },
      { upsert: true },
    );
  }

  async find(id: string): Promise<SignInPayload | undefined> {
    return this.payloadOf(await this.records.findById(this.key(id)).lean<SignInRecord>());
  }

  async findByUid(uid: string): Promise<SignInPayload | undefined> {
    return this.payloadOf(await this.records.findOne({ kind: this.kind, uid }).lean<SignInRecord>());
  }

  async findByUserCode(userCode: string): Promise<SignInPayload | undefined> {
    return this.payloadOf(await this.records.findOne({ kind: this.kind, userCode }).lean<SignInRecord>());
  }

  /** Marks a code or token used: a second exchange of the same code is refused (and revokes its grant). */
  async consume(id: string): Promise<void> {
    await this.records.updateOne({ _id: this.key(id) }, { $set: { 'payload.consumed': Math.floor(Date.now() / 1000) } });
  }

  async destroy(id: string): Promise<void> {
    await this.records.deleteOne({ _id: this.key(id) });
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.records.deleteMany({ grantId });
  }

  /** Expired records may linger until the TTL monitor runs: never hand one out. */
  private payloadOf(record: SignInRecord | null): SignInPayload | undefined {
    if (!record || (record.expiresAt && record.expiresAt.getTime() <= Date.now())) return undefined;
    return record.payload;
  }
}
