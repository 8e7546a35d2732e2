// The SMART configuration document (`.well-known/smart-configuration`, at the root and under /fhir):
// how a client finds the token endpoint and what it offers: SMART Backend Services for systems, and
// for people the standalone launch of a public client (the workbench) with PKCE and OpenID Connect
// (auth/sign-in.ts), whose code is exchanged at the same token endpoint.
import { assertionAlgorithms } from './clients.js';

export function smartConfiguration(baseUrl: string): Record<string, unknown> {
  return {
    issuer: baseUrl,
    authorization_endpoint: `${baseUrl}/oidc/authorize`,
    token_endpoint: `${baseUrl}/auth/token`,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: assertionAlgorithms,
    grant_types_supported: ['client_credentials', 'authorization_code'],
    code_challenge_methods_supported: ['S256'],
    response_types_supported: ['code'],
    revocation_endpoint: `${baseUrl}/oidc/revoke`,
    end_session_endpoint: `${baseUrl}/oidc/logout`,
    registration_endpoint: `${baseUrl}/auth/clients`,
    jwks_uri: `${baseUrl}/.well-known/jwks.json`,
    // Any resource type may stand for `*`; a client is granted what its registration allows.
    scopes_supported: [
      'openid',
      'fhirUser',
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
    capabilities: [
      'client-confidential-asymmetric',
      'permission-v1',
      'permission-v2',
      'launch-standalone',
      'client-public',
      'sso-openid-connect',
      'permission-user',
    ],
  };
}
