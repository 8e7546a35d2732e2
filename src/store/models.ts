// The store's collections. Each resource type's collection holds the current versions with their
// precomputed search index; `<Type>_history` holds earlier versions (written before they are replaced).
import { Schema, type Connection, type Model, type MongooseQueryMiddleware, type Query } from 'mongoose';
import type { Resource } from '@medplum/fhirtypes';
import { storedResourceTypes } from '../base/resource-types.js';
import { indexedCodes, supportedParameters } from './search/parameters.js';
import { inSession } from './transactions.js';

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
  /** A delivery to another institution that this version owes, kept in the same document as the version. */
  outbox?: Delivery;
  /** Who may see it: the references of its institution, case and patient (see access/ownership.ts). */
  access?: string[];
}

export type HistoryEntry = Omit<StoredResource, 'idx' | 'dt' | 'outbox' | 'access'>;

/** The state of a delivery owed to a referring institution (see writeback/). */
export interface Delivery {
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  /** When the first attempt was due; the give-up time counts from here. */
  since: Date;
  /** When the next attempt is due (for a pending one) or when the running attempt's lease ends. */
  due: Date;
  /** What the last attempt met, worded without patient data. */
  lastError?: string;
  deliveredAt?: Date;
  /** Anything the delivery noted for later: a refused status update, the ids the institution gave. */
  notes?: string[];
  /** Delivery-specific data fixed at write time (for an opinion: its signature). */
  data?: Record<string, unknown>;
}

/** One claim per conditional create query, so that concurrent retries of it create one resource. */
export interface ConditionalClaim {
  _id: string; // Type?normalized-query
  resourceId: string;
}

export interface Models {
  /** The collection of `type`'s current versions, named after the type (`Observation`). */
  resources(type: string): Model<StoredResource>;
  /** Earlier versions of `type`'s resources (`Observation_history`). */
  history(type: string): Model<HistoryEntry>;
  claims: Model<ConditionalClaim>;
}

const options = { versionKey: false, minimize: false, strict: false } as const;

const queries: MongooseQueryMiddleware[] = [
  'find',
  'findOne',
  'countDocuments',
  'updateOne',
  'updateMany',
  'replaceOne',
  'deleteOne',
  'deleteMany',
  'findOneAndUpdate',
];

/** Every query of the schema's model takes the session of the transaction it runs in (see transactions.ts). */
function joiningTransactions<T>(schema: Schema<T>): Schema<T> {
  schema.pre(queries, function (this: Query<unknown, unknown>) {
    const { session } = inSession();
    if (session && !this.getOptions().session) this.session(session);
  });
  return schema;
}

/**
 * One collection per resource type, so that a query or a version-guarded write on a Task never meets
 * the thousands of chart records beside it.
 */
export function createModels(connection: Connection): Models {
  const resources = new Map<string, Model<StoredResource>>();
  const history = new Map<string, Model<HistoryEntry>>();
  const claimSchema = new Schema<ConditionalClaim>({ _id: String, resourceId: String }, { ...options, collection: 'conditional_claims' });
  return {
    resources(type) {
      let model = resources.get(type);
      if (!model) {
        const schema = new Schema<StoredResource>(
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
            access: [String],
          },
          { ...options, collection: type },
        );
        joiningTransactions(schema);
        model = connection.model(`Resource_${type}`, schema);
        resources.set(type, model);
      }
      return model;
    },
    history(type) {
      let model = history.get(type);
      if (!model) {
        const schema = new Schema<HistoryEntry>(
          { _id: String, type: String, id: String, versionId: Number, lastUpdated: Date, deleted: Boolean, resource: Schema.Types.Mixed },
          { ...options, collection: `${type}_history` },
        );
        joiningTransactions(schema);
        model = connection.model(`History_${type}`, schema);
        history.set(type, model);
      }
      return model;
    },
    claims: connection.model('ConditionalClaim', joiningTransactions(claimSchema)),
  };
}

/**
 * The indexes of a type's collection. A search sorts by lastUpdated (newest first, ties by _id), so each
 * token or reference index carries that order after its value: a page of the newest matches is read
 * from the index in order and stops at the page's end, however many match.
 */
export function resourceIndexes(type: string): IndexSpec[] {
  const codes = supportedParameters(type);
  const byValue = (field: string): IndexSpec => ({ [field]: 1, lastUpdated: -1, _id: 1 });
  return [
    { lastUpdated: -1, _id: 1 },
    byValue('access'),
    // A date range is searched from either end (`lt` reads its start, `ge` its end).
    ...indexedCodes
      .filter((code) => codes.has(code))
      .flatMap((code): IndexSpec[] => (codes.get(code)?.kind === 'date' ? [{ [`dt.${code}.s`]: 1 }, { [`dt.${code}.e`]: 1 }] : [byValue(`idx.${code}`)])),
  ];
}

type IndexSpec = Record<string, 1 | -1>;

/** The index of a type's earlier versions: one resource's, newest first. */
export const historyIndex: IndexSpec = { id: 1, versionId: -1 };

/**
 * Makes every index the store's queries rely on, one command per collection, all at once (an index
 * that exists already is left as it is).
 */
export async function ensureIndexes(models: Models): Promise<void> {
  const specs = (keys: IndexSpec[]) => keys.map((key) => ({ key }));
  await Promise.all(
    storedResourceTypes.flatMap((type) => [
      models.resources(type).collection.createIndexes(specs(resourceIndexes(type))),
      models.history(type).collection.createIndexes(specs([historyIndex])),
    ]),
  );
}
