// A mongoose model of a connection, made once: a second store on the same connection (a test's,
// a second service in one process) gets the model already registered under that name.
import type { Connection, Model, Schema } from 'mongoose';

export function modelOf<T>(connection: Connection, name: string, schema: Schema<T>): Model<T> {
  return (connection.models[name] as Model<T> | undefined) ?? connection.model<T>(name, schema);
}
