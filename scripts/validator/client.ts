// Node's side of the HL7 validator (the Java program beside this file): builds it once with Maven,
// then keeps one JVM up that validates a resource or a file per line, so a test pays its start once.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { StructureDefinition } from '@medplum/fhirtypes';
import { shortLivedJvm } from '../java.js';

export interface Hl7Issue {
  severity: 'fatal' | 'error' | 'warning';
  location: string;
  message: string;
  messageId: string;
}

export interface Hl7Verdict {
  file: string;
  resourceType: string;
  issues: Hl7Issue[];
}

/** The Maven project (scripts/validator, found from here whether run from src or from dist). */
const project = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'scripts', 'validator', 'pom.xml')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, 'scripts', 'validator');
})();
export const profilesDir = path.join(project, '..', '..', 'profiles');
const jar = path.join(project, 'target', 'hl7-validator.jar');

export const errorsOf = (verdict: Hl7Verdict): Hl7Issue[] => verdict.issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');

/** The newest change to the validator's sources (pom.xml and src/), in ms since the epoch. */
function sourcesChanged(): number {
  const newest = (at: string): number =>
    statSync(at).isDirectory() ? Math.max(0, ...readdirSync(at).map((name) => newest(path.join(at, name)))) : statSync(at).mtimeMs;
  return Math.max(newest(path.join(project, 'pom.xml')), newest(path.join(project, 'src')));
}

/** The validator's jar, built with Maven when it is not there yet or older than its sources; throws when Java or Maven is missing. */
export function validatorJar(): string {
  for (const [tool, flag] of [
    ['java', '-version'],
    ['mvn', '-v'],
  ]) {
    if (spawnSync(tool, [flag], { stdio: 'ignore' }).status !== 0) {
      throw new Error(`The HL7 validator needs ${tool} (Java 17 and Maven): install them (apt-get install openjdk-17-jdk-headless maven)`);
    }
  }
  if (!existsSync(jar) || statSync(jar).mtimeMs < sourcesChanged()) {
    const build = spawnSync('mvn', ['-q', '-B', 'package'], { cwd: project, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`mvn package in ${project} failed:\n${build.stdout}${build.stderr}`);
  }
  return jar;
}

/** Runs the validator once over `args` and answers its JSON lines. */
export function runValidator(args: string[]): Record<string, unknown>[] {
  const run = spawnSync('java', [...shortLivedJvm, '-jar', validatorJar(), '--ig', profilesDir, ...args], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`the HL7 validator failed (${run.status}):\n${run.stderr}`);
  return run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The validator's answer to --snapshots, by url. */
export function generatedSnapshots(answer: Record<string, unknown>): Map<string, StructureDefinition> {
  const generated = answer.snapshots as { url: string; structureDefinition: StructureDefinition }[];
  return new Map(generated.map((line) => [line.url, line.structureDefinition]));
}

/** A long-lived validator: `validate` sends a resource (or a file's path) and answers its verdict. */
export class Hl7Validator {
  private readonly answers: ((line: string) => void)[] = [];

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => this.answers.shift()?.(line));
  }

  static async start(): Promise<Hl7Validator> {
    const child = spawn('java', [...shortLivedJvm, '-jar', validatorJar(), '--ig', profilesDir, '--stdin'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const validator = new Hl7Validator(child);
    const ready = new Promise<string>((resolve) => validator.answers.push(resolve));
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`the HL7 validator exited (${code}):\n${stderr}`))));
    await Promise.race([ready, exited]);
    return validator;
  }

  /** One resource (as JSON) or one file, validated; calls are answered in order. */
  validate(resource: object | string): Promise<Hl7Verdict> {
    return new Promise((resolve) => {
      this.answers.push((line) => resolve(JSON.parse(line) as Hl7Verdict));
      this.child.stdin.write(`${typeof resource === 'string' ? resource : JSON.stringify(resource)}\n`);
    });
  }

  /** Each StructureDefinition of profiles/, by url, with the snapshot HL7's generator makes of its differential. */
  snapshots(): Promise<Map<string, StructureDefinition>> {
    return new Promise((resolve) => {
      this.answers.push((line) => resolve(generatedSnapshots(JSON.parse(line) as Record<string, unknown>)));
      this.child.stdin.write('--snapshots\n');
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    await exited;
  }
}
