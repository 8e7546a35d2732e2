// Layer 2: the profile a resource claims (meta.profile) or its role implies, checked with
// @medplum/core (cardinality, fixed values, invariants), plus required bindings to our own ValueSets.
import { evalFhirPath, getAllDataTypes, OperationOutcomeError, parseStructureDefinition, validateResource, validateTypedValue } from '@medplum/core';
import type { CodeableConcept, Coding, OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { hasSecondOpinionCategory, type Conformance } from '../conformance/artifacts.js';
import { baseStructure, ensureDefinitionsFor } from '../base/base-definitions.js';

interface RequiredBinding {
  subPath: string;
  valueSet: string;
  codes: Set<string>;
}

export class ProfileValidator {
  private readonly bindingCache = new Map<string, RequiredBinding[]>();
  /** The name each profile's parsed schema is known by (see checkAgainst). */
  private readonly parsed = new Map<string, string>();

  constructor(private readonly conformance: Conformance) {}

  /** The profiles that apply: those named in meta.profile, else ours for a second-opinion resource. */
  profilesFor(resource: Resource): StructureDefinition[] | undefined {
    const named = resource.meta?.profile;
    if (named?.length) {
      const ours = named.map((url) => this.conformance.profiles.get(url)).filter((p): p is StructureDefinition => !!p);
      return ours.length ? ours : undefined;
    }
    if (!hasSecondOpinionCategory(this.conformance, resource)) {
      return undefined;
    }
    const implied = [...this.conformance.profiles.values()].filter((p) => p.type === resource.resourceType);
    return implied.length ? implied : undefined;
  }

  validate(resource: Resource, explicitProfile?: StructureDefinition): OperationOutcomeIssue[] {
    const profiles = explicitProfile ? [explicitProfile] : this.profilesFor(resource);
    // A resource of a type the service does not store (contained, or inside a Bundle) needs FHIR's other definitions.
    ensureDefinitionsFor(resource);
    const issues: OperationOutcomeIssue[] = [];
    for (const profile of profiles ?? [undefined]) {
      try {
        issues.push(...this.checkAgainst(resource, profile).filter((i) => i.severity === 'error'));
      } catch (err) {
        if (!(err instanceof OperationOutcomeError)) {
          throw err;
        }
        issues.push(...(err.outcome.issue ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal'));
      }
      const definition = profile ?? baseStructure(`http://hl7.org/fhir/StructureDefinition/${resource.resourceType}`);
      if (definition) {
        issues.push(...this.checkBindings(resource, definition));
      }
    }
    issues.push(...this.checkExtensions(resource));
    return issues;
  }

  /**
   * @medplum/core's check of `resource` against `profile` (its base type's definition when none).
   * Given a profile in its options, validateResource parses the whole StructureDefinition again on
   * every call: three quarters of the time a second-opinion request's check took. Each profile is
   * parsed once here and its schema kept among the core's data types under a name of its own (the
   * profile's URL, which no FHIR type has), which validateTypedValue then finds like any type's.
   */
  private checkAgainst(resource: Resource, profile: StructureDefinition | undefined): OperationOutcomeIssue[] {
    if (!profile?.url) return validateResource(resource, profile ? { profile } : undefined);
    let name = this.parsed.get(profile.url);
    if (!name) {
      name = `${profile.url}|parsed`;
      getAllDataTypes()[name] = parseStructureDefinition(profile);
      this.parsed.set(profile.url, name);
    }
    return validateTypedValue({ type: name, value: resource });
  }

  /** Required bindings (ours and FHIR's), which the core validator does not check. */
  private checkBindings(resource: Resource, definition: StructureDefinition, root = resource.resourceType as string): OperationOutcomeIssue[] {
    const issues: OperationOutcomeIssue[] = [];
    for (const binding of this.bindingsOf(definition)) {
      const values = binding.subPath ? evalFhirPath(binding.subPath, resource) : [resource];
      values.forEach((value) => {
        const codings = codingsOf(value);
        if (codings.length && !codings.some((c) => inValueSet(binding.codes, c))) {
          issues.push({
            severity: 'error',
            code: 'code-invalid',
            details: { text: `Value is not in the required value set ${binding.valueSet}` },
            expression: [[root, binding.subPath].filter(Boolean).join('.')],
          });
        }
      });
    }
    return issues;
  }

  /** The required bindings of a definition that can be checked here, worked out once per definition. */
  private bindingsOf(definition: StructureDefinition): RequiredBinding[] {
    const key = definition.url;
    let bindings = this.bindingCache.get(key);
    if (!bindings) {
      bindings = [];
      for (const element of definition.snapshot?.element ?? []) {
        const valueSet = element.binding?.strength === 'required' ? element.binding.valueSet : undefined;
        const path = element.path ?? '';
        // A value[x] is read from its parent, whose value* key codingsOf picks; other choices are left to layer 1.
        const choice = path.endsWith('.value[x]');
        if (!valueSet || (path.includes('[x]') && !choice) || element.max === '0') continue;
        const codes = this.conformance.terminology.expand(valueSet);
        if (codes) {
          bindings.push({
            subPath: path
              .split('.')
              .slice(1, choice ? -1 : undefined)
              .join('.'),
            valueSet: valueSet.split('|')[0],
            codes,
          });
        }
      }
      this.bindingCache.set(key, bindings);
    }
    return bindings;
  }

  private checkExtensions(resource: Resource): OperationOutcomeIssue[] {
    const extensions = (resource as { extension?: { url?: string }[] }).extension ?? [];
    return extensions.flatMap((extension, i) => {
      const definition = this.conformance.extensions.get(extension.url ?? '');
      const at = `${resource.resourceType}.extension[${i}]`;
      return definition ? [...checkValueType(extension, definition, at), ...this.checkBindings(extension as unknown as Resource, definition, at)] : [];
    });
  }
}

/** The value types our extension definitions allow, which the core validator does not check on a resource's extensions. */
function checkValueType(extension: object, definition: StructureDefinition, at: string): OperationOutcomeIssue[] {
  const allowed = definition.snapshot?.element
    ?.find((e) => e.path === 'Extension.value[x]')
    ?.type?.map((t) => `value${(t.code ?? '').charAt(0).toUpperCase()}${(t.code ?? '').slice(1)}`);
  if (!allowed?.length) return [];
  return Object.keys(extension)
    .filter((key) => key.startsWith('value') && !allowed.includes(key))
    .map((key) => ({
      severity: 'error',
      code: 'structure',
      details: { text: `${key} is not allowed here, only ${allowed.join(' or ')}` },
      expression: [`${at}.${key}`],
    }));
}

function inValueSet(codes: Set<string>, coding: Coding): boolean {
  if (coding.system) {
    return codes.has(`${coding.system}|${coding.code}`);
  }
  // A bare code takes its system from the value set.
  return [...codes].some((key) => key.endsWith(`|${coding.code}`));
}

function codingsOf(value: unknown): Coding[] {
  if (typeof value === 'string') {
    return [{ code: value }];
  }
  const v = value as CodeableConcept & Coding & { valueCodeableConcept?: CodeableConcept; valueCoding?: Coding; valueCode?: string };
  if (v.valueCodeableConcept || v.valueCoding || v.valueCode) {
    return codingsOf(v.valueCodeableConcept ?? v.valueCoding ?? v.valueCode);
  }
  return v.coding ?? (v.code ? [v] : []);
}
