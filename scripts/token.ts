// `npm run -s token -- --role admin --scope "system/*.*"`: prints an access token signed with
// AUTH_SIGNING_KEY (or the file AUTH_SIGNING_KEY_FILE names), for people and scripts. The service
// accepts it when it runs with the same key and the same BASE_URL (or PORT), which give the token's
// key, issuer and audience. It runs the compiled code that `npm ci` built, so it never compiles.
import { parseArgs } from 'node:util';
import { mintAccessToken } from '../src/auth/access-tokens.js';
import { roles, type Role } from '../src/auth/clients.js';
import { parseScopes } from '../src/auth/scopes.js';
import { loadConfig } from '../src/config.js';

const usage = `usage: npm run -s token -- --role <${roles.join('|')}> --scope "<SMART scopes>" [options]

Prints an access token the service accepts when it runs with the same AUTH_SIGNING_KEY (or
AUTH_SIGNING_KEY_FILE) and BASE_URL (or PORT) as this command.

  --role         who the token speaks for: ${roles.join(', ')}
  --scope        SMART scopes, e.g. "system/*.*" or "system/ServiceRequest.cruds system/Task.rs"
  --subject      the client or person named in the token (default local-<role>)
  --institution  Organization/id, for a referrer: the institution whose cases it may see
  --fhir-user    Practitioner/id or PractitionerRole/id, for a reviewer
  --lifetime     seconds the token lasts (default AUTH_TOKEN_LIFETIME_SECONDS, 300), e.g. 3600 for an hour
  --help         this text

Example:
  TOKEN=$(npm run -s token -- --role admin --scope 'system/*.*' --lifetime 3600)`;

try {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      scope: { type: 'string' },
      subject: { type: 'string' },
      institution: { type: 'string' },
      'fhir-user': { type: 'string' },
      lifetime: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
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
  const message = (err as Error).message;
  process.stderr.write(message === usage ? `${usage}\n` : `${message}\n(npm run -s token -- --help shows the options)\n`);
  process.exit(1);
}
