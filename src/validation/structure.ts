// Layer 1: structural validation against the FHIR R4 JSON schema with ajv, compiled once per
// resource type instead of through the schema's 187-way oneOf: at build time for the types the
// service writes (precompiled.ts), at run time, on first use, for any other.
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { loadSchema } from './fhir-schema.js';
import { loadPrecompiled, newAjv, schemaKey } from './precompiled.js';

export class StructureValidator {
  private compiled: { ajv: Ajv; resourceTypes: Set<string> } | undefined;
  private readonly validators: Map<string, ValidateFunction>;
  readonly resourceTypes: Set<string>;

  /**
   * @param whole compile the schema as published (the 187-way oneOf), for comparison only.
   * @param precompiled use the build's validators where they match (false: compile every type here).
   */
  constructor(
    readonly whole = false,
    precompiled = true,
  ) {
    const built = whole || !precompiled ? undefined : loadPrecompiled();
    this.validators = built?.validators ?? new Map<string, ValidateFunction>();
    // With the build's validators, the schema is read only if a type they lack comes.
    this.resourceTypes = built?.resourceTypes ?? this.compiler().resourceTypes;
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
      validate = this.compiler().ajv.getSchema(ref) as ValidateFunction;
      this.validators.set(type, validate);
    }
    return validate;
  }

  /** The schema added to ajv, read on first need. */
  private compiler(): { ajv: Ajv; resourceTypes: Set<string> } {
    if (!this.compiled) {
      const { schema, resourceTypes } = loadSchema(this.whole);
      const ajv = newAjv();
      ajv.addSchema(schema, schemaKey);
      this.compiled = { ajv, resourceTypes };
    }
    return this.compiled;
  }
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
