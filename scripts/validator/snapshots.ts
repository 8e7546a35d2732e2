// npm run profiles:snapshots — writes into each StructureDefinition of profiles/ the snapshot that
// HL7's generator makes of its differential, for tools that do not generate snapshots themselves
// (and for the service, which reads them). The differential stays as written; --check only compares.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { StructureDefinition } from '@medplum/fhirtypes';
import { generatedSnapshots, profilesDir, runValidator } from './client.js';

/**
 * The StructureDefinition files of profiles/ whose committed snapshot differs from the generated one
 * (`generated`: from a validator already running; else one is run for it).
 */
export function staleSnapshots(write: boolean, generated = generatedSnapshots(runValidator(['--snapshots'])[0])): string[] {
  const stale: string[] = [];
  for (const file of readdirSync(profilesDir).filter((f) => f.startsWith('StructureDefinition-'))) {
    const at = path.join(profilesDir, file);
    const sd = JSON.parse(readFileSync(at, 'utf8')) as StructureDefinition;
    const snapshot = generated.get(sd.url)?.snapshot;
    if (!snapshot) throw new Error(`no snapshot was generated for ${file}`);
    if (isDeepStrictEqual(sd.snapshot, snapshot)) continue;
    stale.push(file);
    if (write) writeFileSync(at, `${JSON.stringify({ ...sd, snapshot }, null, 2)}\n`);
  }
  return stale;
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const check = process.argv.includes('--check');
  const stale = staleSnapshots(!check);
  console.log(stale.length ? `${check ? 'stale' : 'written'}: ${stale.join(', ')}` : 'every snapshot is up to date');
  process.exitCode = check && stale.length ? 1 : 0;
}
