// A case: who the patient is (the name now that the case is open), the referrer's questions first,
// the diagnosis questioned, what the chart holds and lacks, and the tabs for the chart, the
// conversation with the referrer and the opinion. A case that is not the person's answers 404 from
// the API, and the page says so.
import { useEffect, useState } from 'preact/hooks';
import type { Bundle, Communication, OperationOutcome, Patient, Resource, ServiceRequest, Task } from '@medplum/fhirtypes';
import type { User } from './auth.js';
import { ageOf, businessStatus, dueOf, formatDate, isOverdue, nameOf, sexOf, specialtyOf, text } from './cases.js';
import { Chart } from './chart.js';
import { Conversation } from './conversation.js';
import { FhirError, read, search, write } from './fhir.js';
import { OpinionEditor } from './opinion.js';
import { statusName } from './settings.js';
import { Alert } from './alert.js';

export interface CaseData {
  task: Task;
  request: ServiceRequest;
  patient?: Patient;
  questions: Communication[];
  /** The chart: the $case-packet's records and its completeness summary, once they have come. */
  chart?: { records: Resource[]; completeness: OperationOutcome };
}

/** What the first view needs: the Task, its request, the patient and the questions sent with it. */
async function loadCase(taskId: string): Promise<CaseData> {
  const task = await read<Task>(`Task/${taskId}`);
  const requestRef = task.focus?.reference as string;
  const [request, patient, thread] = await Promise.all([
    read<ServiceRequest>(requestRef),
    task.for?.reference ? read<Patient>(task.for.reference) : undefined,
    search<Communication>(`Communication?based-on=${requestRef}&_sort=sent`),
  ]);
  // Questions sent with the case (the patient's and the referrer's), not the answers to ours.
  const questions = thread.filter((c) => !c.basedOn?.some((b) => b.reference?.startsWith('CommunicationRequest/')) && !c.inResponseTo?.length);
  return { task, request, patient, questions };
}

/** Everything retrieved for the case, closed by the completeness summary; thousands of records, so it comes second. */
async function loadChart(requestRef: string): Promise<CaseData['chart']> {
  const packet = await read<Bundle>(`${requestRef}/$case-packet`);
  const entries = (packet.entry ?? []).map((e) => e.resource as Resource);
  const records = entries.slice(0, -1).filter((r) => !['ServiceRequest', 'Task', 'Patient'].includes(r.resourceType));
  return { records, completeness: entries.at(-1) as OperationOutcome };
}

const tabs = [
  { key: 'chart', label: 'Chart' },
  { key: 'conversation', label: 'Conversation' },
  { key: 'opinion', label: 'Opinion' },
];

export function CasePage({ taskId, tab, user }: { taskId: string; tab: string; user: User }) {
  const [data, setData] = useState<CaseData>();
  const [error, setError] = useState<FhirError | Error>();
  const [startError, setStartError] = useState<string>();
  const [chart, setChart] = useState<CaseData['chart']>();
  const reload = () => loadCase(taskId).then(setData, setError);
  useEffect(() => {
    setData(undefined);
    setChart(undefined);
    setError(undefined);
    void loadCase(taskId).then((found) => {
      setData(found);
      return loadChart(found.task.focus?.reference as string).then(setChart);
    }, setError);
  }, [taskId]);
  useEffect(() => {
    document.title = `${data ? nameOf(data.patient) : 'Case'} · ${tab} · Second opinion workbench`;
  }, [data, tab]);
  if (error) {
    const missing = error instanceof FhirError && error.status === 404;
    return (
      <section class="refused" data-refused={missing ? 'not-found' : 'error'}>
        <h1 tabIndex={-1}>{missing ? 'This case is not open to you' : 'The case could not be opened'}</h1>
        <p role="alert">
          {missing
            ? 'There is no such case among yours: it may be assigned to another reviewer, or it does not exist. Ask a coordinator if you should have it.'
            : error.message}
        </p>
        <p>
          <a href="#/">Back to the queue</a>
        </p>
      </section>
    );
  }
  if (!data) return <p class="loading">Opening the case…</p>;
  const { task, request, patient } = data;
  const withChart = { ...data, chart };
  const mine = task.owner?.reference === user.fhirUser;
  const canStart = mine && ['received', 'accepted'].includes(task.status);
  const start = async () => {
    try {
      let current = task;
      for (const status of task.status === 'received' ? ['accepted', 'in-progress'] : ['in-progress']) {
        current = await write<Task>(`Task/${task.id}`, 'PUT', { ...current, status });
      }
      await reload();
    } catch (err) {
      setStartError((err as Error).message);
    }
  };
  return (
    <article class="case" data-loaded="true" data-task={task.id}>
      <header class="case-head">
        <h1 tabIndex={-1}>
          {nameOf(patient)}{' '}
          <span class="muted">
            ({sexOf(patient)}, {ageOf(patient)} years)
          </span>
        </h1>
        <p class="facts">
          <span data-fact="status" data-task-status={task.status}>
            {statusName(businessStatus(task))} ({task.status})
          </span>{' '}
          · <span>{specialtyOf(request)}</span> · <span>priority {request.priority ?? 'routine'}</span> · <span>due {formatDate(dueOf(task))}</span>
          {isOverdue(task) && <span class="badge overdue">overdue</span>}
          {task.status === 'on-hold' && <span class="badge hold">on hold: awaiting the referrer's answer</span>}
        </p>
        {canStart && (
          <button type="button" id="start-review" onClick={() => void start()}>
            Accept and start the review
          </button>
        )}
        <Alert text={startError} />
      </header>
      <section aria-labelledby="questions-title" class="questions">
        <h2 id="questions-title">The referrer's questions</h2>
        <ol>
          {(request.note ?? []).map((n) => (
            <li>{n.text}</li>
          ))}
          {data.questions.map((c) => (
            <li>
              {c.payload?.map((p) => p.contentString).join(' ')} <span class="muted">({c.sender?.reference?.split('/')[0] ?? 'sender'})</span>
            </li>
          ))}
        </ol>
        <p>
          <strong>Diagnosis questioned:</strong> {(request.reasonCode ?? []).map((r) => `${text(r)} (${r.coding?.[0]?.code ?? ''})`).join('; ') || 'none given'}
        </p>
      </section>
      <nav class="tabs" aria-label="Case">
        {tabs.map((t) => (
          <a href={`#/case/${taskId}/${t.key}`} aria-current={t.key === tab ? 'page' : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
      {tab === 'conversation' ? (
        <Conversation data={withChart} user={user} onChange={reload} />
      ) : tab === 'opinion' ? (
        <OpinionEditor data={withChart} user={user} onChange={reload} />
      ) : (
        <Chart data={withChart} />
      )}
    </article>
  );
}
