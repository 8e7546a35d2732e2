// The resource types this server stores and serves, all through the same pipeline.
export const workflowResourceTypes = [
  'ServiceRequest',
  'Task',
  'DiagnosticReport',
  'Communication',
  'CommunicationRequest',
  'Organization',
  'Endpoint',
  'Practitioner',
  'PractitionerRole',
  'Provenance',
  'AuditEvent',
  // Cohorts of patients, for Group/{id}/$export.
  'Group',
  // The outcome Measures, loaded from profiles/; evaluated by $evaluate-measure.
  'Measure',
] as const;

/** The clinical record types that retrieval copies from the referring institution. */
export const clinicalResourceTypes = [
  'Patient',
  'Condition',
  'Observation',
  'Procedure',
  'MedicationRequest',
  'MedicationStatement',
  'AllergyIntolerance',
  'Immunization',
  'Encounter',
  'ImagingStudy',
  'DocumentReference',
  'CarePlan',
] as const;

export const storedResourceTypes: readonly string[] = [...workflowResourceTypes, ...clinicalResourceTypes];

export function isStoredResourceType(type: string): boolean {
  return storedResourceTypes.includes(type);
}
