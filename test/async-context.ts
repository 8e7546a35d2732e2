// Jest setup (setupFilesAfterEnv): each test file loads the service's modules afresh, and with them new
// AsyncLocalStorage instances (the store's transactions, the request's agent, oidc-provider's). Node 20
// keeps every instance ever used in one list and visits each on every promise the process makes, so a
// worker that had run 25 files paid 25 times over for each promise. When a file starts, the instances
// the files before it used are disabled: their services have stopped by then (a file's own afterAll
// runs after this setup's, so a file's end would be too early). One used again enables itself again.
import { AsyncLocalStorage } from 'node:async_hooks';
import { beforeAll } from '@jest/globals';

/** Kept on the prototype, which every test file of a worker shares (each file has a global of its own). */
const usedKey = Symbol.for('second-opinion.test.async-context.used');
type Tracked = typeof AsyncLocalStorage.prototype & { [usedKey]?: Set<AsyncLocalStorage<unknown>> };
const proto = AsyncLocalStorage.prototype as Tracked;

if (!proto[usedKey]) {
  const used = new Set<AsyncLocalStorage<unknown>>();
  proto[usedKey] = used;
  // The methods are called on their instances (Reflect.apply with `this`), never detached.
  const run = Reflect.get(proto, 'run') as (...args: unknown[]) => unknown;
  const enterWith = Reflect.get(proto, 'enterWith') as (store: unknown) => void;
  proto.run = function (this: AsyncLocalStorage<unknown>, ...args: unknown[]) {
    used.add(this);
    return Reflect.apply(run, this, args);
  } as typeof proto.run;
  proto.enterWith = function (this: AsyncLocalStorage<unknown>, store: unknown) {
    used.add(this);
    Reflect.apply(enterWith, this, [store]);
  };
}

beforeAll(() => {
  const used = proto[usedKey] as Set<AsyncLocalStorage<unknown>>;
  for (const storage of used) storage.disable();
  used.clear();
});
