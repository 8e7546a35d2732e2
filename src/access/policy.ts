// Who may do what, by role, before any record is looked at: the classes of resource, what each role
// may do to each class, and which roles may call each operation. Deny by default: a type, an action
// or an operation not granted here is refused. Which records of a class a caller sees is the
// ownership's (ownership.ts) and the gate's (gate.ts).
import type { Role } from '../auth/clients.js';

/**
 * patient-data: the chart and every record of a case (seen by reach: institution, case, patient);
 * directory: institutions, their endpoints, reviewers, the outcome Measures (not about any patient);
 * audit: the AuditEvents (admins read them, nobody writes them through the API);
 * cohort: Groups of patients, by reference only, that exports are made for.
 */
export type ResourceClass = 'patient-data' | 'directory' | 'audit' | 'cohort';
export type Action = 'read' | 'search' | 'create' | 'update' | 'delete';

const directoryTypes = new Set(['Organization', 'Endpoint', 'Practitioner', 'PractitionerRole', 'Measure']);

/** The records of a case: a reviewer sees them by the case, never by the patient (who may have other cases). */
export const caseTypes = new Set(['ServiceRequest', 'Task', 'DiagnosticReport', 'Communication', 'CommunicationRequest']);

export function classOf(type: string): ResourceClass {
  if (type === 'AuditEvent') return 'audit';
  if (type === 'Group') return 'cohort';
  return directoryTypes.has(type) ? 'directory' : 'patient-data';
}

const careRoles: Role[] = ['referrer-system', 'reviewer', 'coordinator', 'admin'];
const everyRole: Role[] = [...careRoles, 'analyst'];

const granted: Record<ResourceClass, Record<Action, Role[]>> = {
  'patient-data': { read: careRoles, search: careRoles, create: careRoles, update: careRoles, delete: ['coordinator', 'admin'] },
  directory: { read: everyRole, search: everyRole, create: ['admin'], update: ['admin'], delete: ['admin'] },
  audit: { read: ['admin'], search: ['admin'], create: [], update: [], delete: [] },
  cohort: {
    read: ['coordinator', 'admin', 'analyst'],
    search: ['coordinator', 'admin', 'analyst'],
    create: ['coordinator', 'admin'],
    update: ['coordinator', 'admin'],
    delete: ['coordinator', 'admin'],
  },
};

export function roleMay(role: Role | undefined, type: string, action: Action): boolean {
  return !!role && granted[classOf(type)][action].includes(role);
}

/** Who sees the outcome figures: aggregates, never a patient's record. */
const outcomeRoles: Role[] = ['analyst', 'coordinator', 'admin'];

export const mayReadOutcomes = (role: Role | undefined): boolean => !!role && outcomeRoles.includes(role);

/** Who may call each operation (what it then touches is checked as the interaction it amounts to). */
const operationRoles: Record<string, Role[]> = {
  validate: careRoles,
  'case-packet': careRoles,
  verify: careRoles,
  submit: ['referrer-system', 'coordinator', 'admin'],
  notify: ['referrer-system', 'coordinator', 'admin'],
  redeliver: ['referrer-system', 'coordinator', 'admin'],
  assign: ['coordinator', 'admin'],
  // What an export holds is everyone's, so it is for those who see everything or see it de-identified.
  export: ['analyst', 'coordinator', 'admin'],
  'evaluate-measure': outcomeRoles,
};

/** Whether a role may have patient data identified in an export (analysts only ever get it de-identified). */
export const mayExportIdentified = (role: Role | undefined): boolean => seesAllCases(role);

export function roleMayCall(role: Role | undefined, operation: string): boolean {
  return !!role && Object.hasOwn(operationRoles, operation) && operationRoles[operation].includes(role);
}

/** Roles that see every record of patient data (all institutions, all cases). */
export const seesAllCases = (role: Role | undefined): boolean => role === 'coordinator' || role === 'admin';
