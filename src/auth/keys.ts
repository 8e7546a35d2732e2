// The service's signing keys (access tokens, opinions, SMART client assertions): a PKCS#8 PEM from
// the environment, or a key made for this process; and the public JWK each publishes in the JWKS.
import { exportJWK, generateKeyPair, importPKCS8, type CryptoKey, type JWK } from 'jose';

/** The key in `pem`, or, without one, a new key for this process after `onMissing` (which may throw). */
export async function privateKeyOf(pem: string | undefined, algorithm: string, onMissing: () => void): Promise<CryptoKey> {
  if (pem) return importPKCS8(pem, algorithm, { extractable: true });
  onMissing();
  return (await generateKeyPair(algorithm, { extractable: true })).privateKey;
}

/** The public half of a private key, as a JWK to publish: no private parameters. */
export async function publicJwkOf(privateKey: CryptoKey, keyId: string, algorithm: string): Promise<JWK> {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = await exportJWK(privateKey);
  return { ...publicJwk, kid: keyId, alg: algorithm, use: 'sig' };
}
