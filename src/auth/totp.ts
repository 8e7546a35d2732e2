// One-time codes (TOTP, RFC 6238: six digits, 30-second steps, SHA-1, as authenticator apps expect)
// for accounts that have them, by otplib. The time step a code was accepted at is kept with the
// account, so a code can be used once: a later sign-in needs a code of a later step.
import { generateSecret, generateURI, verify } from 'otplib';

/** The name an authenticator app shows beside the code. */
const issuer = 'Second opinion workbench';
const period = 30;
/** One step either side: a phone's clock a little off, or a code typed as it changes. */
const epochTolerance = period;

export function newTotpSecret(): string {
  return generateSecret();
}

/** The otpauth:// URI an authenticator app takes (as a QR code or typed in); it holds the secret. */
export function totpUri(username: string, secret: string): string {
  return generateURI({ issuer, label: username, secret });
}

/** The time step `code` belongs to, if it is right for `secret` now and later than `usedStep`; undefined otherwise. */
export async function acceptedStep(secret: string, code: string, usedStep?: number): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined;
  // A step used already at the far end of the window leaves nothing to accept (otplib refuses such a bound).
  const latestStep = Math.floor((Math.floor(Date.now() / 1000) + epochTolerance) / period);
  if (usedStep !== undefined && usedStep >= latestStep) return undefined;
  const result = await verify({ secret, token: code, period, epochTolerance, afterTimeStep: usedStep });
  return result.valid ? (result as { timeStep: number }).timeStep : undefined;
}
