// The case pipeline: which event starts which stage, in the order of DESIGN.md's flow. Each stage runs
// after the write that starts it has been stored and its hooks are done (FhirService.onCommitted), or
// when a background job tells that its work is in (CaseEvents), never from inside another write's
// hooks. Where a crash in between must not lose the next step, the event comes from a durable job or
// outbox that runs again. Hooks that remain on writes are the rules and records of a write itself
// (validation, labels, a version's Provenance, a signature), each with its declared order.
import type { CommittedListener, FhirService } from '../fhir/interactions.js';
import type { Outcomes } from '../outcomes/install.js';
import type { Opinions } from '../opinion/opinions.js';
import type { ReviewWorkflow } from '../review/workflow.js';
import type { DeliveryWorker } from '../writeback/delivery.js';
import type { CaseEvents } from './events.js';

export interface PipelineStages {
  /** Opens the case of a created second-opinion request: its Task and its durable retrieval job. */
  openCase: CommittedListener;
  review: ReviewWorkflow;
  opinions: Opinions;
  delivery: DeliveryWorker;
  outcomes: Outcomes;
}

export function casePipeline(service: FhirService, events: CaseEvents, stages: PipelineStages): void {
  const { review, opinions, delivery, outcomes } = stages;

  // 1. Intake: a second-opinion request accepted (POST, a transaction, $submit, polling, $notify)
  //    opens its case: the Task (received, records-retrieving) and the durable retrieval job.
  service.onCommitted('ServiceRequest', stages.openCase);

  // 2. Retrieval: the job's worker pulls the chart and marks the records ready; before the job is
  //    done, routing gives the case to a reviewer, or queues it awaiting assignment.
  events.on('chart-retrieved', ({ taskId }) => review.routing.routeWhenRecordsReady(taskId));

  // 3. Review: a question to the referrer puts a case in progress on hold; the answer completes the
  //    question, and with every question answered the case is under review again.
  service.onCommitted('CommunicationRequest', (question) => review.questions.afterQuestion(question));
  service.onCommitted('Communication', (message) => review.questions.afterMessage(message));

  // 4. Opinion final (or amended): its signature is recorded, the case shows the delivery pending,
  //    and the delivery worker looks at once (the delivery itself was stored with the opinion).
  service.onCommitted('DiagnosticReport', async (report) => {
    if (await opinions.signed(report)) delivery.nudge();
  });

  // 5. Write-back: a message for the referring side owes a delivery, stored with it; the worker looks.
  for (const type of ['Communication', 'CommunicationRequest']) service.onCommitted(type, async () => delivery.nudge());

  // 6. Outcomes: every move of a case, and every opinion written, updates its counters.
  service.onCommitted('Task', (task) => outcomes.cases.caseMoved(task));
  service.onCommitted('DiagnosticReport', (report) => outcomes.cases.opinionWritten(report));
}
