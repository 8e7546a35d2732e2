// The accounts of people who sign in to the workbench (auth/accounts.ts): one document per user name,
// linked to the person's Practitioner or PractitionerRole; the password only as a scrypt hash; the
// TOTP secret of an account that has one, which no answer of the service carries.
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOf } from './model-of.js';

export interface StoredAccount {
  _id: string; // the user name
  /** `scrypt$N$r$p$salt$hash`, base64url parts (auth/passwords.ts). */
  passwordHash: string;
  role: string;
  /** `Practitioner/id` or `PractitionerRole/id`. */
  fhirUser: string;
  /** The name shown in the workbench. */
  name?: string;
  createdAt: Date;
  /** The one-time code secret (base32) and the last time step a code was accepted at (auth/totp.ts). */
  totp?: { secret: string; usedStep?: number };
}

export class AccountStore {
  private readonly accounts: Model<StoredAccount>;

  constructor(connection: Connection) {
    const schema = new Schema<StoredAccount>(
      { _id: String, passwordHash: String, role: String, fhirUser: String, name: String, createdAt: Date, totp: { secret: String, usedStep: Number } },
      { versionKey: false, collection: 'auth_accounts' },
    );
    this.accounts = modelOf(connection, 'AuthAccount', schema);
  }

  async get(username: string): Promise<StoredAccount | undefined> {
    return (await this.accounts.findById(username).lean<StoredAccount>()) ?? undefined;
  }

  /** Adds an account or replaces the one of the same user name (a new password). */
  async put(account: StoredAccount): Promise<void> {
    await this.accounts.replaceOne({ _id: account._id }, account, { upsert: true });
  }

  /** Gives an account a new TOTP secret (no step used yet); false when there is no such account. */
  async setTotp(username: string, secret: string): Promise<boolean> {
    return (await this.accounts.updateOne({ _id: username }, { $set: { totp: { secret } } })).matchedCount === 1;
  }

  /**
   * Marks `step` used, only if no code of it or of a later step was accepted since `seen` was read:
   * of two sign-ins with the same code at once, one wins.
   */
  async useTotpStep(username: string, secret: string, seen: number | undefined, step: number): Promise<boolean> {
    const filter = { _id: username, 'totp.secret': secret, 'totp.usedStep': seen ?? { $exists: false } };
    return (await this.accounts.updateOne(filter, { $set: { 'totp.usedStep': step } })).modifiedCount === 1;
  }
}
