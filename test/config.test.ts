// Configuration as an operator gives it: secrets from the environment or from mounted files, and a
// production start that refuses to guess its public address.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newSigningKeyPem } from '../src/auth/access-tokens.js';
import { loadConfig, secretVariables } from '../src/config.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function secretFile(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('secrets from files', () => {
  test('a PEM key mounted as a file is read whole, as if it were in the environment', async () => {
    const pem = await newSigningKeyPem();
    const fromFile = loadConfig({ AUTH_SIGNING_KEY_FILE: secretFile('auth.pem', pem) });
    const fromEnv = loadConfig({ AUTH_SIGNING_KEY: pem });
    expect(fromFile.auth.signingKey.pem).toBe(pem.trimEnd());
    expect(fromFile.auth.signingKey.pem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(fromFile.auth.signingKey.pem).toBe(fromEnv.auth.signingKey.pem?.trimEnd());
  });

  test('every secret has its _FILE form', () => {
    const config = loadConfig({
      OPINION_SIGNING_KEY_FILE: secretFile('opinion.pem', 'opinion-key\n'),
      SMART_PRIVATE_KEY_FILE: secretFile('smart.pem', 'smart-key\n'),
      MONGODB_URI_FILE: secretFile('uri', 'mongodb://user:secret@db-0,db-1,db-2/?replicaSet=rs0\n'),
      AUTH_BOOTSTRAP_CLIENTS_FILE: secretFile('clients.json', '[]\n'),
      RECORD_ID_KEY_FILE: secretFile('record-id-key', `${'5e'.repeat(32)}\n`),
    });
    expect(config.recordIdKey).toBe('5e'.repeat(32));
    expect(config.opinionKey.pem).toBe('opinion-key');
    expect(config.smartKey?.pem).toBe('smart-key');
    expect(config.mongodbUri).toBe('mongodb://user:secret@db-0,db-1,db-2/?replicaSet=rs0');
    expect(config.auth.bootstrapClients).toBe('[]');
    expect(secretVariables).toEqual(expect.arrayContaining(['AUTH_SIGNING_KEY', 'OPINION_SIGNING_KEY', 'SMART_PRIVATE_KEY', 'RECORD_ID_KEY']));
  });

  test('a secret given twice, a missing file or an empty one stops the start with the variable named', () => {
    const file = secretFile('twice.pem', 'key');
    expect(() => loadConfig({ AUTH_SIGNING_KEY: 'key', AUTH_SIGNING_KEY_FILE: file })).toThrow('AUTH_SIGNING_KEY and AUTH_SIGNING_KEY_FILE are both set');
    expect(() => loadConfig({ OPINION_SIGNING_KEY_FILE: path.join(dir, 'absent.pem') })).toThrow(
      /OPINION_SIGNING_KEY_FILE names .*absent\.pem, which cannot be read \(ENOENT\)/,
    );
    expect(() => loadConfig({ SMART_PRIVATE_KEY_FILE: secretFile('empty.pem', '\n') })).toThrow(/SMART_PRIVATE_KEY_FILE names .*empty\.pem, which is empty/);
  });

  test("a file's content never appears in an error", () => {
    expect(() => loadConfig({ MONGODB_URI_FILE: secretFile('uri-twice', 'mongodb://user:hunter2@db/'), MONGODB_URI: 'mongodb://db/' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });
});

describe('production', () => {
  const keys = {
    AUTH_SIGNING_KEY: 'auth-key',
    OPINION_SIGNING_KEY: 'opinion-key',
    SIGN_IN_COOKIE_KEY: 'cookie-key',
    MONGODB_URI: 'mongodb://db-0,db-1,db-2/?replicaSet=rs0',
  };

  test('BASE_URL is required, with the reason in the message', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ...keys })).toThrow(/BASE_URL is required when NODE_ENV=production/);
    expect(loadConfig({ NODE_ENV: 'production', BASE_URL: 'https://second-opinion.example.org/', ...keys }).baseUrl).toBe('https://second-opinion.example.org');
  });

  test('the signing keys and the sign-in cookie key are required: replicas and restarts must share them', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', BASE_URL: 'https://so.example.org', MONGODB_URI: keys.MONGODB_URI })).toThrow(
      'AUTH_SIGNING_KEY (or AUTH_SIGNING_KEY_FILE) and OPINION_SIGNING_KEY (or OPINION_SIGNING_KEY_FILE) and SIGN_IN_COOKIE_KEY (or SIGN_IN_COOKIE_KEY_FILE) required when NODE_ENV=production',
    );
    expect(() =>
      loadConfig({ NODE_ENV: 'production', BASE_URL: 'https://so.example.org', AUTH_SIGNING_KEY: 'auth-key', MONGODB_URI: keys.MONGODB_URI }),
    ).toThrow(/^OPINION_SIGNING_KEY \(or OPINION_SIGNING_KEY_FILE\) and SIGN_IN_COOKIE_KEY/);
    const { SIGN_IN_COOKIE_KEY: _, ...withoutCookieKey } = keys;
    expect(() => loadConfig({ NODE_ENV: 'production', BASE_URL: 'https://so.example.org', ...withoutCookieKey })).toThrow(
      /^SIGN_IN_COOKIE_KEY \(or SIGN_IN_COOKIE_KEY_FILE\) required when NODE_ENV=production/,
    );
    const cookieKey = secretFile('sign-in-cookie-key', 'c0'.repeat(32));
    expect(
      loadConfig({ NODE_ENV: 'production', BASE_URL: 'https://so.example.org', ...withoutCookieKey, SIGN_IN_COOKIE_KEY_FILE: cookieKey }).signIn.cookieKey,
    ).toBe('c0'.repeat(32));
  });

  test('a MongoDB replica set is required: the embedded database is not for production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', BASE_URL: 'https://so.example.org', ...keys, MONGODB_URI: '' })).toThrow(
      /^MONGODB_URI \(or MONGODB_URI_FILE\) is required when NODE_ENV=production/,
    );
  });
});

describe('BASE_URL elsewhere', () => {
  test('defaults to localhost and the port elsewhere', () => {
    expect(loadConfig({ PORT: '9090' }).baseUrl).toBe('http://localhost:9090');
  });

  test('must be an absolute http(s) URL', () => {
    expect(() => loadConfig({ BASE_URL: 'second-opinion.example.org' })).toThrow('BASE_URL must be an absolute http(s) URL, got "second-opinion.example.org"');
    expect(() => loadConfig({ BASE_URL: 'ftp://second-opinion.example.org' })).toThrow('BASE_URL must be an absolute http(s) URL');
  });
});
