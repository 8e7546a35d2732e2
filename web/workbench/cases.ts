// A case as the workbench shows it: its Task (status, owner, due date), the request (questions, the
// diagnosis questioned, specialty, priority) and the patient (age and sex; the name once opened).
import type { CodeableConcept, Patient, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import { search } from './fhir.js';

export interface Case {
  task: Task;
  request?: ServiceRequest;
  patient?: Patient;
}

const done = new Set(['completed', 'cancelled', 'rejected', 'failed']);

export const text = (concept: CodeableConcept | undefined): string => concept?.text ?? concept?.coding?.[0]?.display ?? concept?.coding?.[0]?.code ?? '';
export const businessStatus = (task: Task): string => task.businessStatus?.coding?.[0]?.code ?? '';
export const dueOf = (task: Task): string | undefined => task.restriction?.period?.end;
export const isOpen = (task: Task): boolean => !done.has(task.status);
export const isOverdue = (task: Task, now = Date.now()): boolean => isOpen(task) && !!dueOf(task) && Date.parse(dueOf(task) as string) < now;
export const question = (request: ServiceRequest | undefined): string => request?.note?.map((n) => n.text).join(' ') ?? '';
export const specialtyOf = (request: ServiceRequest | undefined): string => text(request?.performerType) || 'by diagnosis';

export function ageOf(patient: Patient | undefined, now = new Date()): string {
  if (!patient?.birthDate) return '?';
  const born = new Date(patient.birthDate);
  let age = now.getUTCFullYear() - born.getUTCFullYear();
  if (now.getUTCMonth() < born.getUTCMonth() || (now.getUTCMonth() === born.getUTCMonth() && now.getUTCDate() < born.getUTCDate())) age--;
  return String(age);
}

export const sexOf = (patient: Patient | undefined): string => ({ female: 'F', male: 'M', other: 'other', unknown: '?' })[patient?.gender ?? 'unknown'] ?? '?';

export function nameOf(patient: Patient | undefined): string {
  const name = patient?.name?.[0];
  return name ? [...(name.given ?? []), name.family].filter(Boolean).join(' ') : 'Unnamed patient';
}

/** The person's cases (a coordinator's: all), with their requests and patients, by due date. */
export async function loadCases(): Promise<Case[]> {
  const found = await search<Resource>('Task?_count=1000&_include=Task:focus&_include=Task:patient');
  const byRef = new Map(found.map((r) => [`${r.resourceType}/${r.id}`, r]));
  const tasks = found.filter((r): r is Task => r.resourceType === 'Task' && !!r.focus?.reference?.startsWith('ServiceRequest/'));
  return tasks
    .map((task) => ({
      task,
      request: byRef.get(task.focus?.reference ?? '') as ServiceRequest | undefined,
      patient: byRef.get(task.for?.reference ?? '') as Patient | undefined,
    }))
    .sort((a, b) => (dueOf(a.task) ?? '9999').localeCompare(dueOf(b.task) ?? '9999'));
}

export const formatDate = (iso: string | undefined): string => (iso ? new Date(iso).toISOString().slice(0, 10) : '');
