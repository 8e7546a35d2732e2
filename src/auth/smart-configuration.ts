// The SMART configuration document (`.well-known/smart-configuration`, at the root and under /fhir):
// how a client finds the token endpoint and what it offers. SMART Backend Services only: no
// authorization endpoint, so no App Launch, PKCE or OpenID Connect entries.
import { assertionAlgorithms } from './clients.js';

export function smartConfiguration(baseUrl: string): Record<string, unknown> {
  return {
    token_endpoint: `${baseUrl}/auth/token`,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: assertionAlgorithms,
    grant_types_supported: ['client_credentials'],
    registration_endpoint: `${baseUrl}/auth/clients`,
    jwks_uri: `${baseUrl}/.well-known/jwks.json`,
    // Any resource type may stand for `*`; a client is granted what its registration allows.
    scopes_supported: [
      'system/*.cruds',
      'system/*.rs',
      'system/*.*',
      'system/*.read',
      'system/*.write',
      'user/*.cruds',
      'user/*.rs',
      'user/*.*',
      'user/*.read',
      'user/*.write',
    ],
    capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
  };
}
