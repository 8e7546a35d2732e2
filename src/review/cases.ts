// A case as the review workflow sees it: its Task, the request it fulfils, and the referring
// institution the request came from. Read by id wherever the case's conventions allow (the Task
// shares its request's id, see openCase).
import { caseOwner, ownerOf } from '../access/ownership.js';
import type { PractitionerRole, Reference, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import type { FhirService } from '../fhir/interactions.js';
import { referenceKeys } from '../store/search/parameters.js';
import type { Institutions } from '../intake/institutions.js';
import { caseTaskOf } from '../case/case-task.js';
import { localReference } from '../retrieval/source-records.js';

export class Cases {
  constructor(
    private readonly service: FhirService,
    private readonly institutions: Institutions,
  ) {}

  /** The case's Task of the first reference that leads to one: a ServiceRequest or a Task. */
  async taskOf(references: Reference[]): Promise<Task | undefined> {
    for (const reference of references.map((r) => this.local(r) ?? '')) {
      const [type, id] = reference.split('/');
      if (type === 'Task') {
        const [task] = (await this.service.repository.readMany([reference])) as Task[];
        if (task) return task;
      }
      if (type === 'ServiceRequest' && id) {
        const task = await caseTaskOf(this.service.repository, reference);
        if (task) return task;
      }
    }
    return undefined;
  }

  async requestOf(task: Task): Promise<ServiceRequest | undefined> {
    const focus = this.local(task.focus);
    return focus?.startsWith('ServiceRequest/') ? ((await this.service.repository.readMany([focus]))[0] as ServiceRequest | undefined) : undefined;
  }

  /**
   * The referring institution's Organization(s), as `Organization/id`: the requester's (an
   * Organization, or a PractitionerRole's organization), and the institution the case belongs to.
   */
  async referringOrganizations(task: Task, request: ServiceRequest | undefined): Promise<Set<string>> {
    const requesters = new Set([task.requester, request?.requester].map((r) => this.local(r)).filter((r): r is string => !!r));
    const organizations = new Set([...requesters].filter((r) => r.startsWith('Organization/')));
    const roles = (await this.service.repository.readMany([...requesters].filter((r) => r.startsWith('PractitionerRole/')))) as PractitionerRole[];
    const owner = request ? await caseOwner(this.service.repository, request.id as string) : undefined;
    for (const organization of [...roles.map((role) => role.organization), ...(owner ? [{ reference: owner }] : [])]) {
      const local = this.local(organization);
      if (local) organizations.add(local);
    }
    return organizations;
  }

  /**
   * The records the request names (reasonReference, supportingInfo), as kept here: retrieved from the
   * referring server with the patient's chart (the request's references are relative to that server),
   * else records on this server itself.
   */
  async recordsNamedBy(request: ServiceRequest, references: Reference[]): Promise<Resource[]> {
    const owner = await caseOwner(this.service.repository, request.id as string);
    const place = await this.institutions.patientOf(request, owner);
    const keys = references
      .map((r) => (place && r.reference ? localReference(place.ehrBase, r.reference) : undefined) ?? this.local(r))
      .filter((k): k is string => !!k);
    // Only the case's own institution's records: a request never reads another's through what it names.
    return (await this.service.repository.readManyStored(keys)).filter((doc) => owner && ownerOf(doc) === owner).map((doc) => doc.resource as Resource);
  }

  /** A reference as `Type/id` on this server, whether written relative or absolute. */
  local(reference: Reference | undefined): string | undefined {
    return reference?.reference ? referenceKeys(reference.reference, this.service.fhirBase.replace(/\/fhir$/, ''))[0] : undefined;
  }
}
