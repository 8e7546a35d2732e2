// `npm run -s token -- --role admin --scope "system/*.*"`: prints an access token signed with
// AUTH_SIGNING_KEY, for local runs and the demo. The service accepts it when it runs with the same
// AUTH_SIGNING_KEY and the same BASE_URL (or PORT), which give the token's key, issuer and audience.
import { parseArgs } from 'node:util';
import { mintAccessToken } from '../src/auth/access-tokens.js';
import { roles, type Role } from '../src/auth/clients.js';
import { parseScopes } from '../src/auth/scopes.js';
import { loadConfig } from '../src/config.js';

const usage = `usage: npm run -s token -- --role <${roles.join('|')}> --scope "<SMART scopes>" [--subject id] [--institution Organization/id] [--fhir-user Practitioner/id] [--lifetime seconds]`;

try {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      scope: { type: 'string' },
      subject: { type: 'string' },
      institution: { type: 'string' },
      'fhir-user': { type: 'string' },
      lifetime: { type: 'string' },
    },
  });
  const role = values.role as Role;
  if (!roles.includes(role) || !values.scope) throw new Error(usage);
  if (!parseScopes(values.scope).length) throw new Error(`--scope names no SMART resource scope (such as system/*.* or system/ServiceRequest.cruds)`);
  const lifetime = values.lifetime === undefined ? undefined : Number(values.lifetime);
  if (lifetime !== undefined && !(Number.isInteger(lifetime) && lifetime > 0)) throw new Error('--lifetime must be a whole number of seconds');
  const token = await mintAccessToken(
    loadConfig(),
    { subject: values.subject ?? `local-${role}`, scope: values.scope, role, institution: values.institution, fhirUser: values['fhir-user'] },
    lifetime,
  );
  process.stdout.write(`${token}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
