// The accounts of people who sign in to the workbench (auth/accounts.ts): one document per user name,
// linked to the person's Practitioner or PractitionerRole; the password only as a scrypt hash.
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
}

export class AccountStore {
  private readonly accounts: Model<StoredAccount>;

  constructor(connection: Connection) {
    const schema = new Schema<StoredAccount>(
      { _id: String, passwordHash: String, role: String, fhirUser: String, name: String, createdAt: Date },
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
}
