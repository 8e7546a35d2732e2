// Every message addressed to the referring side of a case (a Communication, or a reviewer's question
// as a CommunicationRequest, whose recipients include the request's requester) owes a delivery to that
// institution's FHIR server, stored with it in the same write; the delivery worker posts it there.
import type { Communication, CommunicationRequest, ServiceRequest } from '@medplum/fhirtypes';
import type { BeforeWrite, FhirService } from '../fhir/interactions.js';
import { caseTaskOf, requestOfRecord } from '../case/case-task.js';

export function owedToReferrer(service: FhirService): BeforeWrite {
  return async (resource, current) => {
    const message = resource as Communication | CommunicationRequest;
    if (current) return undefined; // delivered when it was created; a later status change stays here
    const requestRef = requestOfRecord(message);
    if (!requestRef) return undefined;
    const [request] = (await service.repository.readMany([requestRef])) as ServiceRequest[];
    const requester = request?.requester?.reference;
    if (!requester || !message.recipient?.some((r) => r.reference === requester)) return undefined;
    // Only a case whose patient came from the institution has somewhere to deliver to.
    const task = await caseTaskOf(service.repository, requestRef);
    const [patient] = task?.for?.reference ? await service.repository.readMany([task.for.reference]) : [];
    if (!patient?.meta?.source) return undefined;
    const now = new Date();
    return { resource, outbox: { state: 'pending', attempts: 0, since: now, due: now } };
  };
}
