// Reviewers as the store keeps them: a PractitionerRole (specialty, organization, the reviewer-capacity
// extension) of a Practitioner (languages in communication, licences in qualification), and their load:
// the open cases they own.
import type { Coding, PractitionerRole } from '@medplum/fhirtypes';
import type { FhirService } from '../fhir/interactions.js';
import { parseSearch } from '../fhir/search/search.js';
import { openStatuses } from '../case/task-status.js';

export interface Candidate {
  role: PractitionerRole;
  capacity: number;
  openCases: number;
}

export class Reviewers {
  private readonly capacityUrl: string;

  constructor(private readonly service: FhirService) {
    this.capacityUrl = `${service.conformance.canonical}/StructureDefinition/reviewer-capacity`;
  }

  /** Active roles with any of the specialties, with their capacity and load. */
  async withSpecialty(specialties: Coding[]): Promise<Candidate[]> {
    const specialty = specialties.map((c) => (c.system ? `${c.system}|${c.code}` : c.code)).join(',');
    const search = parseSearch('PractitionerRole', { specialty, 'active:not': 'false', _count: '1000' });
    const { matches } = await this.service.repository.search(search);
    return Promise.all(matches.map((m) => this.candidate(m.resource as PractitionerRole)));
  }

  async candidate(role: PractitionerRole): Promise<Candidate> {
    return { role, capacity: this.capacityOf(role), openCases: await this.openCases(`PractitionerRole/${role.id}`) };
  }

  /** The reviewer-capacity extension's value; a role without one takes no cases. */
  capacityOf(role: PractitionerRole): number {
    return role.extension?.find((e) => e.url === this.capacityUrl)?.valueUnsignedInt ?? 0;
  }

  /** Tasks the role owns that are still being worked on. */
  async openCases(roleRef: string): Promise<number> {
    const search = parseSearch('Task', { owner: roleRef, status: openStatuses.join(','), _summary: 'count' });
    return (await this.service.repository.search(search)).total ?? 0;
  }
}
