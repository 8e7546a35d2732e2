// The two-layer validator every write passes through: structure first (fast, fails early),
// then the profile. Used by create/update/transaction and by $validate alike.
import type { OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import type { Conformance } from '../conformance/artifacts.js';
import { ProfileValidator } from './profile.js';
import { StructureValidator } from './structure.js';

export class ResourceValidator {
  readonly structure = new StructureValidator();
  readonly profiles: ProfileValidator;

  constructor(readonly conformance: Conformance) {
    this.profiles = new ProfileValidator(conformance);
  }

  /** Error issues, each with an expression naming the offending element; [] when valid. */
  validate(resource: unknown, profile?: StructureDefinition): OperationOutcomeIssue[] {
    const structural = this.structure.validate(resource);
    if (structural.length) {
      return structural;
    }
    return this.profiles.validate(resource as Resource, profile);
  }
}
