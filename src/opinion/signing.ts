// The service's signature on a final opinion: a JWS (detached payload, RFC 7515 appendix F) over the
// opinion's canonical JSON (RFC 8785) without `meta`, which the store rewrites on every version.
// The key comes from the environment; its public half is served in the JWKS.
import canonicalize from 'canonicalize';
import { CompactSign, compactVerify, importJWK, type CryptoKey, type JWK } from 'jose';
import { privateKeyOf, publicJwkOf } from '../auth/keys.js';
import type { Resource } from '@medplum/fhirtypes';
import type { Logger } from '../logger.js';

const algorithms = ['ES256', 'ES384', 'RS256', 'RS384', 'PS256'] as const;
type Algorithm = (typeof algorithms)[number];

export interface OpinionKeyConfig {
  pem?: string;
  keyId: string;
  algorithm: string;
}

export class OpinionSigner {
  private constructor(
    private readonly privateKey: CryptoKey,
    private readonly publicKey: CryptoKey,
    readonly keyId: string,
    readonly algorithm: Algorithm,
    readonly publicJwk: JWK,
  ) {}

  /** The configured key; without one, a key made for this process only (signatures then outlive it unverifiable). */
  static async load(config: OpinionKeyConfig, log: Logger): Promise<OpinionSigner> {
    const algorithm = config.algorithm as Algorithm;
    if (!algorithms.includes(algorithm)) {
      throw new Error(`OPINION_SIGNING_ALG must be one of ${algorithms.join(', ')}`);
    }
    const privateKey = await privateKeyOf(config.pem, algorithm, () =>
      log.warn('OPINION_SIGNING_KEY is not set: opinions are signed with a key made for this process only'),
    );
    const jwk = await publicJwkOf(privateKey, config.keyId, algorithm);
    const publicKey = (await importJWK(jwk, algorithm)) as CryptoKey;
    return new OpinionSigner(privateKey, publicKey, config.keyId, algorithm, jwk);
  }

  /** The detached JWS (`header..signature`) over the resource's signed content. */
  async sign(resource: Resource): Promise<string> {
    const jws = await new CompactSign(signedContent(resource)).setProtectedHeader({ alg: this.algorithm, kid: this.keyId }).sign(this.privateKey);
    const [header, , signature] = jws.split('.');
    return `${header}..${signature}`;
  }

  /** Whether `jws` is this key's signature over the resource's content as it is now. */
  async verify(resource: Resource, jws: string): Promise<boolean> {
    const [header, payload, signature] = jws.split('.');
    if (payload !== '' || !header || !signature) return false;
    const attached = `${header}.${Buffer.from(signedContent(resource)).toString('base64url')}.${signature}`;
    try {
      await compactVerify(attached, this.publicKey, { algorithms: [this.algorithm] });
      return true;
    } catch {
      return false;
    }
  }
}

/** What a signature covers: the resource's canonical JSON without `meta`. */
export function signedContent(resource: Resource): Uint8Array {
  const { meta: _meta, ...content } = resource;
  return new TextEncoder().encode(canonicalize(content));
}
