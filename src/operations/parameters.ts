// An operation's input, read as its OperationDefinition in profiles/ declares it: known names,
// cardinality, value types and reference targets; 400 naming the offending parameter otherwise.
import { isResourceType } from '@medplum/core';
import type { OperationDefinition, OperationDefinitionParameter, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest } from '../base/outcome.js';

/** The input parameters `definition` declares, by name. */
export function inputsOf(definition: OperationDefinition): Map<string, OperationDefinitionParameter> {
  return new Map((definition.parameter ?? []).filter((p) => p.use === 'in').map((p) => [p.name, p]));
}

/** The `in` parameters of a Parameters body, by name. */
export function readParameters(definition: OperationDefinition, body: unknown): Map<string, ParametersParameter[]> {
  const parameters = body as Parameters | undefined;
  if (parameters?.resourceType !== 'Parameters' || (parameters.parameter !== undefined && !Array.isArray(parameters.parameter))) {
    throw badRequest(`$${definition.code} takes a Parameters resource`, 'Parameters');
  }
  const declared = inputsOf(definition);
  const byName = new Map<string, ParametersParameter[]>();
  for (const [i, parameter] of (parameters.parameter ?? []).entries()) {
    const declaration = declared.get(parameter?.name ?? '');
    if (!declaration) {
      throw badRequest(`$${definition.code} has no parameter "${String(parameter?.name).slice(0, 40)}"`, `Parameters.parameter[${i}].name`);
    }
    checkValue(parameter, declaration, `Parameters.parameter[${i}]`);
    byName.set(declaration.name, [...(byName.get(declaration.name) ?? []), parameter]);
  }
  for (const [name, declaration] of declared) {
    const count = byName.get(name)?.length ?? 0;
    const max = declaration.max === '*' ? Infinity : Number(declaration.max ?? '1');
    if (count < (declaration.min ?? 0) || count > max) {
      throw badRequest(`$${definition.code} takes ${declaration.min ?? 0}..${declaration.max ?? '1'} "${name}", got ${count}`, `Parameters.parameter.${name}`);
    }
  }
  return byName;
}

/** A GET's query string as the Parameters body it stands for, each value typed as the definition declares (unknown names stay strings, for readParameters to refuse). */
export function parametersFromQuery(definition: OperationDefinition, query: Record<string, unknown>): Parameters {
  const declared = inputsOf(definition);
  const parameter = Object.entries(query).flatMap(([name, values]) =>
    [values].flat().map((value) => {
      const type = declared.get(name)?.type ?? 'string';
      return { name, [`value${type.charAt(0).toUpperCase()}${type.slice(1)}`]: String(value) };
    }),
  );
  return { resourceType: 'Parameters', parameter };
}

/** The value is of the declared type; a Reference points at one of the declared target types. */
function checkValue(parameter: ParametersParameter, declaration: OperationDefinitionParameter, at: string): void {
  const type = declaration.type as string;
  if (type === 'Resource' || isResourceType(type)) {
    if (!parameter.resource || (type !== 'Resource' && parameter.resource.resourceType !== type)) {
      throw badRequest(`"${declaration.name}" is a ${type} resource`, `${at}.resource`);
    }
    return;
  }
  const key = `value${type.charAt(0).toUpperCase()}${type.slice(1)}`;
  const value = (parameter as unknown as Record<string, unknown>)[key];
  if (value === undefined) {
    throw badRequest(`"${declaration.name}" is a ${type} (${key})`, `${at}.${key}`);
  }
  if (type === 'Reference') {
    const targets = (declaration.targetProfile ?? []).map((url) => url.split('/').pop() as string);
    const reference = (value as { reference?: unknown }).reference;
    if (typeof reference !== 'string' || (targets.length && !targets.some((t) => new RegExp(`^${t}/[A-Za-z0-9\\-.]{1,64}$`).test(reference)))) {
      throw badRequest(`"${declaration.name}" refers to a ${targets.join(' or ') || 'resource'} as Type/id`, `${at}.${key}`);
    }
  }
}
