// The one place a caller's access is decided, for every interaction, operation and export: the role
// (policy.ts) says what may be done to which class of resource; the caller's reach says which records
// of patient data are theirs to see. A record outside the reach answers 404, as if it did not exist;
// a search is narrowed inside the database; an _include never brings in what the caller cannot read.
// Every interaction is given a gate: a caller's, or, for work the service does on its own, the
// service's by name (`Gate.service`, or `Gate.system(institution)` for work done for one institution,
// whose new records become that institution's). No parameter defaults to either.
import { Operator } from '@medplum/core';
import type { Response } from 'express';
import { principalOf, type Principal } from '../auth/bearer.js';
import { forbidden, methodNotAllowed, notFound, notKnown } from '../base/outcome.js';
import type { Narrowing, Repository } from '../store/repository.js';
import { classOf, roleMay, roleMayCall, seesAllCases, type Action } from './policy.js';
import { chartLabel, isCaseLabel, isInstitutionLabel, isPatientLabel } from './labels.js';
import type { Placement } from '../store/repository.js';

/** The records of patient data a caller may see: all, or those labelled with one of these references. */
type Reach = 'all' | { institutions: string[]; cases: string[]; patients: string[] };

/** A reviewer's reach is the cases assigned to them; past this many, the oldest are not counted. */
const casesAtMost = 1000;

export class Gate {
  /** The service's own work: no restriction, and no institution of its own. */
  static readonly service = new Gate(undefined, undefined);

  /** The service's own work for one institution (`Organization/x`): no restriction; what it writes is the institution's. */
  static system(institution: string | undefined): Gate {
    return new Gate(undefined, undefined, institution);
  }

  /**
   * Retrieval's work for one institution: what it stores was copied from (or records what was copied
   * from) that institution's registered server, so it is the institution's with no reference to read.
   */
  static retrieval(institution: string): Gate {
    return new Gate(undefined, undefined, institution, true);
  }

  private reach?: Promise<Reach>;

  constructor(
    readonly principal: Principal | undefined,
    private readonly repository: Repository | undefined,
    private readonly systemOwner?: string,
    private readonly retrieved = false,
  ) {}

  /** Whether this is the service's own work, not a caller's. */
  get isService(): boolean {
    return !this.principal;
  }

  /** The institution the writer writes for, decided by the server: a referring system's token, or the system work's. */
  get owner(): string | undefined {
    return this.principal ? (this.principal.role === 'referrer-system' ? this.principal.institution : undefined) : this.systemOwner;
  }

  /** What the server knows of a write by this gate (see ownership.ts); `current`: the record it replaces. */
  placement(current?: Placement['current']): Placement {
    return { owner: this.owner, current, ...(this.retrieved ? { retrieved: true } : {}) };
  }

  /** 403 unless the caller's role may `action` resources of `type` at all (405 for writing the audit trail). */
  checkType(type: string, action: Action): void {
    if (!this.principal || roleMay(this.principal.role, type, action)) return;
    if (classOf(type) === 'audit' && action !== 'read' && action !== 'search')
      throw methodNotAllowed('AuditEvents are append-only: the API never creates, changes or deletes them');
    throw forbidden(`The ${this.principal.role ?? 'role-less'} role may not ${action} ${type} resources`);
  }

  /** 403 unless the caller's role may call the operation. */
  checkOperation(code: string): void {
    if (this.principal && !roleMayCall(this.principal.role, code)) throw forbidden(`The ${this.principal.role ?? 'role-less'} role may not call $${code}`);
  }

  /** Whether a stored record of `type`, with these labels, is the caller's to see. */
  async sees(type: string, labels: string[] | undefined): Promise<boolean> {
    if (!this.principal || classOf(type) !== 'patient-data') return true;
    const reach = await this.reachOf();
    if (reach === 'all') return true;
    const anchors = this.anchorsFor(reach);
    return (labels ?? []).some((label) => anchors.has(label));
  }

  /** 404 unless the stored record (when there is one) is the caller's to see. */
  async checkVisible(type: string, id: string, labels: string[] | undefined): Promise<void> {
    if (!(await this.sees(type, labels))) throw notKnown(type);
  }

  /** What a search of `type` is narrowed by; undefined when the caller sees every record. */
  async narrowing(type: string): Promise<Narrowing | undefined> {
    if (!this.principal || classOf(type) !== 'patient-data') return undefined;
    const reach = await this.reachOf();
    return reach === 'all' ? undefined : { access: { $in: [...this.anchorsFor(reach)] } };
  }

  /**
   * A write must stay inside the caller's reach, judged on the labels it would be stored with (its
   * references were checked first, see ownership.ts checkReferences): a referring system writes only
   * for its own institution, a reviewer only records of the cases assigned to them. Outside the reach
   * answers 404, as reading it would.
   */
  async checkWrite(type: string, labels: string[]): Promise<void> {
    if (!this.principal || classOf(type) !== 'patient-data') return;
    const reach = await this.reachOf();
    if (reach === 'all') return;
    const institutions = labels.filter(isInstitutionLabel);
    if (this.principal.role === 'referrer-system') {
      if (institutions.length === 1 && reach.institutions.includes(institutions[0])) return;
      throw forbidden(`A ${this.principal.role} writes only records of its own institution, and its token names none`);
    }
    const anchors = labels.filter((l) => !isInstitutionLabel(l));
    const seen = this.anchorsFor(reach);
    if (!anchors.length) throw forbidden(`A ${this.principal.role} writes only records of the cases it may see: this ${type} names none`);
    if (!anchors.every((l) => seen.has(l) || reach.patients.includes(l))) throw notFound(`The case or patient this ${type} refers to is not known`);
  }

  /** The labels that make a record visible: the institution's, the cases', and the charts of the cases' patients. */
  private anchorsFor(reach: Exclude<Reach, 'all'>): Set<string> {
    return new Set([...reach.institutions, ...reach.cases, ...reach.patients.map(chartLabel)]);
  }

  private reachOf(): Promise<Reach> {
    this.reach ??= this.resolveReach();
    return this.reach;
  }

  private async resolveReach(): Promise<Reach> {
    const principal = this.principal as Principal;
    const none = { institutions: [], cases: [], patients: [] };
    if (seesAllCases(principal.role)) return 'all';
    if (principal.role === 'referrer-system') return principal.institution ? { ...none, institutions: [principal.institution] } : none;
    if (principal.role !== 'reviewer' || !principal.fhirUser || !this.repository) return none;
    // The cases whose Task is owned by the reviewer, or by one of the reviewer's PractitionerRoles.
    let owners = [principal.fhirUser];
    if (principal.fhirUser.startsWith('Practitioner/')) {
      const roles = await this.repository.search({
        resourceType: 'PractitionerRole',
        filters: [{ code: 'practitioner', operator: Operator.EQUALS, value: principal.fhirUser }],
        count: 100,
      });
      owners = [...owners, ...roles.matches.map((m) => `PractitionerRole/${m.resource.id}`)];
    }
    const tasks = await this.repository.search({
      resourceType: 'Task',
      filters: [{ code: 'owner', operator: Operator.EQUALS, value: owners.join(',') }],
      count: casesAtMost,
    });
    const cases = tasks.matches.flatMap((m) => m.access.filter(isCaseLabel));
    const patients = tasks.matches.flatMap((m) => m.access.filter(isPatientLabel));
    return { institutions: [], cases: [...new Set(cases)], patients: [...new Set(patients)] };
  }
}

/** The gate of a request that passed authentication: one per request, so a reviewer's reach is looked up once. */
export function gateOf(res: Response, repository: Repository): Gate {
  // Without a verified caller (a route that skipped authentication) nothing is allowed.
  res.locals.gate ??= new Gate(principalOf(res) ?? { issuer: '', subject: '', scopes: [] }, repository);
  return res.locals.gate as Gate;
}
