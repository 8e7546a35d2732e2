// The analytics page's sign-in: the workbench's (authorization code with PKCE against the service's
// own authorization server), as a client of its own that asks only to read the outcome Measures.
// Bundled as a script that sets `analyticsSignIn` for src/outcomes/page/analytics.js.
import { signInFor } from '../workbench/auth.js';

(globalThis as { analyticsSignIn?: unknown }).analyticsSignIn = signInFor({
  clientId: 'analytics',
  scope: 'openid fhirUser user/Measure.rs',
  path: '/analytics',
});
