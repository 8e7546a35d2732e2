// De-identification of exported resources, element by element as the FHIR R4 definitions type them
// (@medplum/core's crawler): what names or reaches a person is removed, free text is removed, every
// id and reference is replaced by a keyed hash, and dates are moved by one offset per patient.
// The HMAC key is made per export and lives only in the memory of the process running it.
import { createHmac, randomBytes } from 'node:crypto';
import { crawlTypedValue, toTypedValue, type TypedValueWithPath } from '@medplum/core';
import type { Coding, Resource } from '@medplum/fhirtypes';
import { ensureDefinitionsFor, loadBaseDefinitions } from '../base/base-definitions.js';
import { localId } from '../retrieval/source-records.js';
import { fhirId, relativeReference, resourceTypeName } from '../base/ids.js';

/** Data types removed wherever they occur: they name or reach a person, or hold free text or content. */
const removedTypes = new Set(['HumanName', 'Identifier', 'Address', 'ContactPoint', 'Narrative', 'Annotation', 'markdown', 'xhtml', 'base64Binary']);
/** String elements that hold free text (CodeableConcept.text, conclusion, Dosage.text, ...); Coding.display stays. */
const freeTextKeys = new Set(['text', 'conclusion', 'description', 'comment', 'title', 'summary', 'patientInstruction']);
/** Elements that are a person's picture or their contacts, whatever their type. */
const removedKeys = new Set(['photo', 'contact']);
const dateTypes = new Set(['date', 'dateTime', 'instant']);
/** Types whose value points at a place, which may be an institution's record. */
const pointerTypes = new Set(['url', 'uri', 'canonical', 'oid', 'uuid']);
/** Where a resource names the patient it is about, in order. */
const patientElements = ['subject', 'patient', 'for', 'beneficiary'] as const;

const securitySystem = 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue';
/** The labels every de-identified resource carries in meta.security. */
export const deidentifiedLabels: Coding[] = [
  { system: securitySystem, code: 'PSEUDED', display: 'pseudonymized' },
  { system: securitySystem, code: 'REDACTED', display: 'redacted' },
];

const dayMs = 86_400_000;
const absoluteReference = new RegExp(String.raw`^(https?:\/\/.+)\/(${resourceTypeName})\/(${fhirId})(?:\/_history\/.*)?$`);

type Edit = { on: Record<string, unknown>; key: string; value?: unknown };

export class Deidentifier {
  private readonly key = randomBytes(32);

  /** `fhirBase`: this server's FHIR base, whose absolute references are its own resources. */
  constructor(private readonly fhirBase: string) {
    loadBaseDefinitions();
  }

  /** The pseudonym of `Type/id` in this export: 32 hex characters of HMAC-SHA256. */
  pseudonym(type: string, id: string): string {
    return createHmac('sha256', this.key).update(`${type}/${id}`).digest('hex').slice(0, 32);
  }

  /** A de-identified copy of `resource` (which is changed in place: pass one read for the purpose). */
  deidentify(resource: Resource): Resource {
    // Every element is walked by its definition, contained resources of any type too.
    ensureDefinitionsFor(resource);
    const patient = this.patientOf(resource);
    const days = this.offsetDays(patient);
    const edits: Edit[] = [];
    crawlTypedValue(toTypedValue(resource), {
      visitProperty: (parent, key, _path, values) => {
        const on = parent.value as Record<string, unknown> | undefined;
        const first = values.flat()[0] as TypedValueWithPath | undefined;
        if (!on || typeof on !== 'object' || !first || first.value === undefined) return;
        const type = first.type;
        const jsonKey = key.endsWith('[x]') ? `${key.slice(0, -3)}${type.charAt(0).toUpperCase()}${type.slice(1)}` : key;
        if (!(jsonKey in on)) return;
        const isString = type === 'string' || type === 'markdown';
        if (
          removedTypes.has(type) ||
          removedKeys.has(key) ||
          (isString && (freeTextKeys.has(key) || key.endsWith('[x]'))) ||
          (parent.type === 'Reference' && key === 'display') ||
          (parent.type === 'Attachment' && key === 'url') ||
          // An extension's URL value points somewhere: at the institution's copy of a record (attachment-retrieval's source), say.
          (parent.type === 'Extension' && key === 'value[x]' && pointerTypes.has(type))
        ) {
          edits.push({ on, key: jsonKey });
        } else if (parent.type === 'Reference' && key === 'reference') {
          edits.push({ on, key: jsonKey, value: this.reference(on[jsonKey] as string) });
        } else if (dateTypes.has(type)) {
          const shift = (v: unknown): unknown => (typeof v === 'string' ? (key === 'birthDate' ? v.slice(0, 4) : shiftDate(v, days)) : v);
          const value = on[jsonKey];
          edits.push({ on, key: jsonKey, value: Array.isArray(value) ? value.map(shift) : shift(value) });
        }
      },
    });
    for (const { on, key, value } of edits) {
      delete on[`_${key}`]; // a primitive's extensions go with it
      if (value === undefined) delete on[key];
      else on[key] = value;
    }
    const { meta } = resource;
    const out = resource as Resource & Record<string, unknown>;
    out.id = this.pseudonym(resource.resourceType, resource.id as string);
    out.meta = { ...(meta?.profile ? { profile: meta.profile } : {}), security: deidentifiedLabels };
    return out;
  }

  /** A reference to a resource here (or to its source record at a referring institution) -> `Type/pseudonym`; others are dropped. */
  private reference(reference: string): string | undefined {
    if (reference.startsWith('#')) return reference;
    const local = this.localReference(reference);
    const match = local && relativeReference.exec(local);
    return match ? `${match[1]}/${this.pseudonym(match[1], match[2])}` : undefined;
  }

  /** `Type/id` here: our own absolute URLs made relative, a referring institution's mapped the way retrieval stores its records. */
  private localReference(reference: string): string | undefined {
    if (reference.startsWith(`${this.fhirBase}/`)) return reference.slice(this.fhirBase.length + 1);
    const absolute = absoluteReference.exec(reference);
    if (absolute) return `${absolute[2]}/${localId(absolute[1], absolute[2], absolute[3])}`;
    return relativeReference.test(reference) ? reference : undefined;
  }

  private patientOf(resource: Resource): string | undefined {
    if (resource.resourceType === 'Patient') return `Patient/${resource.id}`;
    const record = resource as unknown as Record<string, { reference?: string } | undefined>;
    for (const element of patientElements) {
      const reference = record[element]?.reference;
      const local = reference && this.localReference(reference);
      if (local?.startsWith('Patient/')) return local.replace(/\/_history\/.*$/, '');
    }
    return undefined;
  }

  /** How many days (1 to 365) this patient's dates move back; one offset for what belongs to no patient. */
  private offsetDays(patient: string | undefined): number {
    return (
      1 +
      (createHmac('sha256', this.key)
        .update(`date-offset|${patient ?? ''}`)
        .digest()
        .readUInt32BE(0) %
        365)
    );
  }
}

/** `value` (a FHIR date, dateTime or instant) `days` earlier, at the precision it has; the time of day and zone stay. */
export function shiftDate(value: string, days: number): string {
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(.*)$/.exec(value);
  if (!match) return value;
  const [, year, month, day, rest] = match;
  const shifted = new Date(Date.UTC(Number(year), month ? Number(month) - 1 : 0, day ? Number(day) : 1) - days * dayMs).toISOString();
  if (!month) return shifted.slice(0, 4);
  return day ? `${shifted.slice(0, 10)}${rest}` : shifted.slice(0, 7);
}
