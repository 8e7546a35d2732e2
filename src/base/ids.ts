// FHIR R4's id (datatypes.html#id): 1 to 64 letters, digits, '-' and '.'; and a resource type's name.
// Every pattern of the service that matches an id or a `Type/id` reference is built from these.

/** The id's pattern, for building larger ones (`Patient/${fhirId}`). */
export const fhirId = String.raw`[A-Za-z0-9\-.]{1,64}`;

/** A resource type's name: a capital, then letters. */
export const resourceTypeName = '[A-Z][A-Za-z]+';

const wholeId = new RegExp(`^${fhirId}$`);

export function isFhirId(value: string): boolean {
  return wholeId.test(value);
}

/** `Type/id`, or a version of it (`Type/id/_history/v`): type and id captured. */
export const relativeReference = new RegExp(String.raw`^(${resourceTypeName})\/(${fhirId})(?:\/_history\/.*)?$`);

/** A relative reference `Type/id` to one of `types` (`Organization`, or `Practitioner|PractitionerRole`). */
export function referenceTo(types: string): RegExp {
  return new RegExp(String.raw`^(?:${types})\/${fhirId}$`);
}
