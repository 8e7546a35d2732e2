// People's accounts for the workbench sign-in: a user name, a password (scrypt), the role and the
// Practitioner or PractitionerRole the person is. Created by an admin (`POST /auth/accounts`) or the
// demo; a password not given is generated and answered once, never stored in clear or logged. An
// account may also ask for a one-time code (TOTP) after the password: its secret is answered once, at
// enrolment, and an account made again starts without one.
import { AccountStore, type StoredAccount } from '../store/accounts.js';
import type { Connection } from 'mongoose';
import { roles, type Role } from './clients.js';
import { generatedPassword, hashPassword, passwordMatches } from './passwords.js';
import { acceptedStep, newTotpSecret, totpUri } from './totp.js';

/** An account the service refuses to create, and why (names the offending field). */
export class InvalidAccount extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Account {
  username: string;
  role: Role;
  fhirUser: string;
  name?: string;
  /** Whether sign-in asks for a one-time code after the password. */
  totp: boolean;
}

/** People sign in to review and route cases, and to read the outcome figures; systems use their own path. */
const peopleRoles: Role[] = ['reviewer', 'coordinator', 'analyst', 'admin'];
const minPasswordLength = 12;

export class Accounts {
  private readonly store: AccountStore;
  /** A hash to compare against when the user name is unknown, so that a miss takes as long as a wrong password. */
  private readonly decoy = hashPassword(generatedPassword());

  constructor(connection: Connection) {
    this.store = new AccountStore(connection);
  }

  /** Creates or replaces an account; answers the password (the generated one when none was given). */
  async create(body: unknown): Promise<Account & { password: string }> {
    const { username, password, role, fhirUser, name } = (body ?? {}) as Record<string, unknown>;
    if (typeof username !== 'string' || !/^[A-Za-z0-9._@-]{3,64}$/.test(username))
      throw new InvalidAccount('username', 'username must be 3 to 64 letters, digits or . _ @ -');
    if (!peopleRoles.includes(role as Role) || !roles.includes(role as Role)) throw new InvalidAccount('role', `role must be one of ${peopleRoles.join(', ')}`);
    if (typeof fhirUser !== 'string' || !/^(Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64}$/.test(fhirUser))
      throw new InvalidAccount('fhirUser', 'fhirUser must be a reference Practitioner/id or PractitionerRole/id');
    if (password !== undefined && (typeof password !== 'string' || password.length < minPasswordLength))
      throw new InvalidAccount('password', `password must be at least ${minPasswordLength} characters`);
    if (name !== undefined && (typeof name !== 'string' || name.length > 200)) throw new InvalidAccount('name', 'name must be text of at most 200 characters');
    const clear = password ?? generatedPassword();
    const account: StoredAccount = {
      _id: username,
      passwordHash: await hashPassword(clear),
      role: role as string,
      fhirUser,
      ...(name ? { name: name } : {}),
      createdAt: new Date(),
    };
    await this.store.put(account);
    return { ...accountOf(account), password: clear };
  }

  async find(username: string): Promise<Account | undefined> {
    const stored = await this.store.get(username);
    return stored && accountOf(stored);
  }

  /** The account when the password is its own; undefined otherwise, in the same time whether or not the user exists. */
  async signIn(username: string, password: string): Promise<Account | undefined> {
    const stored = username ? await this.store.get(username) : undefined;
    const matches = await passwordMatches(password, stored?.passwordHash ?? (await this.decoy));
    return stored && matches ? accountOf(stored) : undefined;
  }

  /** Gives the account a new TOTP secret (any earlier one stops working); answers its otpauth:// URI, or undefined for no such account. */
  async enrolTotp(username: string): Promise<string | undefined> {
    const secret = newTotpSecret();
    return (await this.store.setTotp(username, secret)) ? totpUri(username, secret) : undefined;
  }

  /** Whether `code` is the account's one-time code now, and not one used already; a right code is used up. */
  async codeMatches(username: string, code: string): Promise<boolean> {
    const totp = (await this.store.get(username))?.totp;
    if (!totp?.secret) return false;
    const step = await acceptedStep(totp.secret, code, totp.usedStep);
    return step !== undefined && (await this.store.useTotpStep(username, totp.secret, totp.usedStep, step));
  }
}

function accountOf(stored: StoredAccount): Account {
  return {
    username: stored._id,
    role: stored.role as Role,
    fhirUser: stored.fhirUser,
    ...(stored.name ? { name: stored.name } : {}),
    totp: Boolean(stored.totp?.secret),
  };
}
