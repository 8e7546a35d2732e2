// Guessing protection for the password sign-in: after SIGN_IN_MAX_FAILURES wrong passwords for one
// account, or SIGN_IN_MAX_FAILURES_PER_ADDRESS from one address, within SIGN_IN_LOCK_SECONDS, sign-in
// there waits until that window ends; the password is not even checked meanwhile, so a guess made
// during the wait tells nothing. A right password clears its account's count.
import type { Connection } from 'mongoose';
import type { Config } from '../config.js';
import { SignInFailureStore } from '../store/sign-in-failures.js';

export class SignInLimits {
  private readonly store: SignInFailureStore;

  constructor(
    connection: Connection,
    private readonly limits: Config['signIn'],
  ) {
    this.store = new SignInFailureStore(connection);
  }

  init(): Promise<void> {
    return this.store.init();
  }

  /** When sign-in for this account from this address may be tried again, if it must wait. */
  async waitUntil(username: string, address: string): Promise<Date | undefined> {
    const { counts, until } = await this.store.counts(keysOf(username, address));
    const [account, fromAddress] = counts;
    return account >= this.limits.maxFailures || fromAddress >= this.limits.maxFailuresPerAddress ? until : undefined;
  }

  failed(username: string, address: string): Promise<void> {
    return this.store.add(keysOf(username, address), this.limits.lockSeconds);
  }

  succeeded(username: string): Promise<void> {
    return this.store.clear(keysOf(username, '')[0]);
  }
}

// User names are case-insensitive here so that changing the case is not a fresh set of guesses.
const keysOf = (username: string, address: string): [string, string] => [`account:${username.toLowerCase()}`, `address:${address}`];
