// The API clients registered with the service's token endpoint (see auth/clients.ts), one document
// per client_id; public keys only, never a secret.
import { Schema, type Connection, type Model } from 'mongoose';
import type { JSONWebKeySet } from 'jose';
import { modelOf } from './model-of.js';

export interface StoredClient {
  _id: string; // client_id
  jwks?: JSONWebKeySet;
  jwksUri?: string;
  scopes: string[];
  role: string;
  institution?: string;
  fhirUser?: string;
  registeredAt: Date;
}

export class ClientStore {
  private readonly clients: Model<StoredClient>;

  constructor(connection: Connection) {
    const schema = new Schema<StoredClient>(
      { _id: String, jwks: Schema.Types.Mixed, jwksUri: String, scopes: [String], role: String, institution: String, fhirUser: String, registeredAt: Date },
      { versionKey: false, minimize: false, collection: 'auth_clients' },
    );
    this.clients = modelOf(connection, 'AuthClient', schema);
  }

  async get(clientId: string): Promise<StoredClient | undefined> {
    return (await this.clients.findById(clientId).lean<StoredClient>()) ?? undefined;
  }

  /** Adds a client; false when its client_id is taken. */
  async add(client: StoredClient): Promise<boolean> {
    try {
      await this.clients.collection.insertOne(client as never);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 11000) return false;
      throw err;
    }
  }

  /** Adds or replaces a client (the start-up registrations, which the environment owns). */
  async put(client: StoredClient): Promise<void> {
    await this.clients.replaceOne({ _id: client._id }, client, { upsert: true });
  }
}
