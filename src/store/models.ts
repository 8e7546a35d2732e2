// The store's collections. `resources` holds the current version of every resource with its
// precomputed search index; `resource_history` holds earlier versions (written before they are replaced).
import { Schema, type Connection, type Model } from 'mongoose';
import type { Resource } from '@medplum/fhirtypes';
import { indexedCodes } from '../fhir/search/parameters.js';

export interface StoredResource {
  _id: string; // Type/id
  type: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  resource?: Resource;
  idx: Record<string, string[]>;
  dt: Record<string, { s: Date; e: Date }>;
}

export type HistoryEntry = Omit<StoredResource, 'idx' | 'dt'>;

/** One claim per conditional create query, so that concurrent retries of it create one resource. */
export interface ConditionalClaim {
  _id: string; // Type?normalized-query
  resourceId: string;
}

export interface Models {
  resources: Model<StoredResource>;
  history: Model<HistoryEntry>;
  claims: Model<ConditionalClaim>;
}

const options = { versionKey: false, minimize: false, strict: false } as const;

export function createModels(connection: Connection): Models {
  const resourceSchema = new Schema<StoredResource>(
    {
      _id: String,
      type: String,
      id: String,
      versionId: Number,
      lastUpdated: Date,
      deleted: Boolean,
      resource: Schema.Types.Mixed,
      idx: Schema.Types.Mixed,
      dt: Schema.Types.Mixed,
    },
    { ...options, collection: 'resources' },
  );
  resourceSchema.index({ type: 1, lastUpdated: -1 });
  for (const code of indexedCodes) {
    resourceSchema.index({ type: 1, [`idx.${code}`]: 1 });
  }
  const historySchema = new Schema<HistoryEntry>(
    { _id: String, type: String, id: String, versionId: Number, lastUpdated: Date, deleted: Boolean, resource: Schema.Types.Mixed },
    { ...options, collection: 'resource_history' },
  );
  historySchema.index({ type: 1, id: 1, versionId: -1 });
  historySchema.index({ type: 1, lastUpdated: -1 });
  const claimSchema = new Schema<ConditionalClaim>({ _id: String, resourceId: String }, { ...options, collection: 'conditional_claims' });
  return {
    resources: connection.model('StoredResource', resourceSchema),
    history: connection.model('HistoryEntry', historySchema),
    claims: connection.model('ConditionalClaim', claimSchema),
  };
}

export async function ensureIndexes(models: Models): Promise<void> {
  await Promise.all([models.resources.createIndexes(), models.history.createIndexes(), models.claims.createIndexes()]);
}
