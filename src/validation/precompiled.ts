// Structure validators compiled at build time (`npm run build` runs scripts/precompile.ts):
// compiling a type's schema with ajv at run time costs about a second and some 30 MB on first use,
// which every process paid again on its first write of each type. The build writes ajv's standalone
// code for the types the service writes; the service loads it when its fingerprint matches the
// schema it would compile itself, and otherwise compiles at run time as before.
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import standalone from 'ajv/dist/standalone/index.js';
import { storedResourceTypes } from '../base/resource-types.js';
import { loadSchema, schemaFingerprint } from './fhir-schema.js';

const require = createRequire(import.meta.url);
/** Beside the compiled sources, so that whatever ships dist/src ships it too. */
const modulePath = fileURLToPath(new URL('./fhir-r4-validators.cjs', import.meta.url));
export const schemaKey = 'fhir-r4';

/** The types compiled at build time: every type the service stores, and the envelopes of its operations. */
const precompiledTypes = [...storedResourceTypes, 'Bundle', 'Parameters'];

/** Options every compilation of the schema uses, at build time and at run time alike. */
export function newAjv(source = false): Ajv {
  return new Ajv({ strict: false, allErrors: false, validateSchema: false, ...(source ? { code: { source: true } } : {}) });
}

export interface Precompiled {
  resourceTypes: Set<string>;
  validators: Map<string, ValidateFunction>;
}

/** The validators the build wrote, when they were made from the schema this code would compile; else undefined. */
export function loadPrecompiled(): Precompiled | undefined {
  if (!existsSync(modulePath)) return undefined;
  const compiled = require(modulePath) as Record<string, unknown> & { fingerprint: string; resourceTypes: string[] };
  if (compiled.fingerprint !== schemaFingerprint()) return undefined;
  const validators = new Map(precompiledTypes.filter((t) => typeof compiled[t] === 'function').map((t) => [t, compiled[t] as ValidateFunction]));
  return { resourceTypes: new Set(compiled.resourceTypes), validators };
}

/** Compiles the precompiled types and writes their code; answers the module's path and size. */
export function writePrecompiled(): { path: string; bytes: number } {
  const { schema, resourceTypes } = loadSchema(false);
  const ajv = newAjv(true);
  ajv.addSchema(schema, schemaKey);
  const refs = Object.fromEntries(precompiledTypes.map((type) => [type, `${schemaKey}#/definitions/${type}`]));
  const code =
    standalone.default(ajv, refs) +
    `\nexports.fingerprint = ${JSON.stringify(schemaFingerprint())};` +
    `\nexports.resourceTypes = ${JSON.stringify([...resourceTypes])};\n`;
  writeFileSync(modulePath, code);
  return { path: modulePath, bytes: code.length };
}
