// Several writes that must happen together, in one MongoDB transaction. The store's reads and writes
// made while `atomically` runs take its session without being handed it (an AsyncLocalStorage), so
// the resource pipeline's hooks join the transaction as they are. Work meant to follow a write, not
// to be part of it (the case pipeline's next stage), waits for the commit with `afterCommit`.
// A database without transactions (a standalone server) runs the work as it comes, unchanged.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ClientSession, Connection } from 'mongoose';

interface Scope {
  session?: ClientSession;
  /** Work to run once the transaction has committed. */
  committed: (() => Promise<void>)[];
}

const scope = new AsyncLocalStorage<Scope>();

export class Transactions {
  constructor(
    private readonly connection: Connection | undefined,
    /** Whether the database runs transactions (a replica set or a sharded cluster does). */
    readonly supported: boolean,
  ) {}

  /** The database's: transactions where it is a replica set or a sharded cluster. */
  static async of(connection: Connection): Promise<Transactions> {
    return new Transactions(connection, await isReplicated(connection));
  }

  /**
   * Runs `work` in one transaction: all of its store writes commit, or none. Inside a transaction
   * already, it joins it. The driver runs `work` again on a transient error (a write conflict), so
   * `work` must be safe to repeat; what it leaves to afterCommit runs once, after the commit.
   */
  async atomically<T>(work: () => Promise<T>): Promise<T> {
    if (!this.connection || !this.supported || scope.getStore()?.session) return work();
    const session = await this.connection.startSession();
    let result: T | undefined;
    let current: Scope = { committed: [] };
    try {
      await session.withTransaction(async () => {
        current = { session, committed: [] };
        result = await scope.run(current, work);
      });
    } finally {
      await session.endSession();
    }
    // Work that ran on in the background must not take the ended session.
    current.session = undefined;
    // What follows the commit is not part of the transaction: its own writes stand alone.
    for (const then of current.committed) await scope.exit(then);
    return result as T;
  }
}

/** `{ session }` of the transaction this call is part of, to spread into a driver call's options. */
export function inSession(): { session?: ClientSession } {
  const session = scope.getStore()?.session;
  return session ? { session } : {};
}

/**
 * Runs `then` once the transaction this call is part of has committed, outside it (never if it
 * aborts), and `atomically` answers once it is done; outside a transaction, at once.
 */
export async function afterCommit(then: () => Promise<void>): Promise<void> {
  const current = scope.getStore();
  if (current?.session) current.committed.push(then);
  else await then();
}

/** A replica set member or a mongos answers hello with a set name or as `isdbgrid`; a standalone server with neither. */
export async function isReplicated(connection: Connection): Promise<boolean> {
  const hello = await connection.db?.admin().command({ hello: 1 });
  return Boolean(hello?.setName || hello?.msg === 'isdbgrid');
}
