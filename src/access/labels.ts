// The labels every stored version carries, which access is decided by (ownership.ts gives them,
// gate.ts reads them): its owning institution, its case, its patient, and the chart it belongs to.
export const isInstitutionLabel = (label: string): boolean => label.startsWith('Organization/');
export const isCaseLabel = (label: string): boolean => label.startsWith('ServiceRequest/');
export const isPatientLabel = (label: string): boolean => label.startsWith('Patient/');
/** The label of a record of a patient's chart (not of a case): a reviewer of any of the patient's cases sees it. */
export const chartLabel = (patient: string): string => `chart|${patient}`;
