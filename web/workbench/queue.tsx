// The queue: the person's cases (a coordinator's: all, and the unassigned ones to assign), sorted by
// due date, with the patient's age and sex but not the name, the question, specialty, priority, due
// date and overdue flag, status; filters; counts that follow the cases as they move (reloaded).
import { useEffect, useState } from 'preact/hooks';
import type { PractitionerRole, Practitioner, Resource } from '@medplum/fhirtypes';
import type { User } from './auth.js';
import { ageOf, businessStatus, dueOf, formatDate, isOpen, isOverdue, loadCases, question, sexOf, specialtyOf, text, type Case } from './cases.js';
import { search, write } from './fhir.js';
import { statusName } from './settings.js';
import { Alert } from './alert.js';

const refreshMs = 15_000;

interface Filters {
  show: 'open' | 'all' | 'done';
  owner: 'mine' | 'all' | 'unassigned';
  priority: string;
  specialty: string;
}

function matches(c: Case, f: Filters, user: User): boolean {
  if (f.show === 'open' && !isOpen(c.task)) return false;
  if (f.show === 'done' && isOpen(c.task)) return false;
  if (f.owner === 'mine' && c.task.owner?.reference !== user.fhirUser) return false;
  if (f.owner === 'unassigned' && c.task.owner) return false;
  if (f.priority && (c.request?.priority ?? c.task.priority ?? 'routine') !== f.priority) return false;
  return !f.specialty || specialtyOf(c.request) === f.specialty;
}

const shows = [
  ['open', 'Open cases'],
  ['done', 'Finished cases'],
  ['all', 'All cases'],
];
const owners = [
  ['all', 'Anyone'],
  ['unassigned', 'Unassigned'],
];
const priorities = [['', 'Any'], ...['stat', 'asap', 'urgent', 'routine'].map((p) => [p, p])];

function Filter(props: { label: string; name: string; value: string; onChange: (e: Event) => void; options: string[][] }) {
  return (
    <label>
      {props.label}
      <select name={props.name} value={props.value} onChange={props.onChange}>
        {props.options.map(([value, label]) => (
          <option value={value}>{label}</option>
        ))}
      </select>
    </label>
  );
}

interface Reviewer {
  ref: string;
  label: string;
}

async function loadReviewers(): Promise<Reviewer[]> {
  const found = await search<Resource>('PractitionerRole?_count=200&_include=PractitionerRole:practitioner');
  const people = new Map(found.filter((r) => r.resourceType === 'Practitioner').map((p) => [`Practitioner/${p.id}`, p as Practitioner]));
  return found
    .filter((r): r is PractitionerRole => r.resourceType === 'PractitionerRole')
    .map((role) => {
      const person = people.get(role.practitioner?.reference ?? '');
      const name = person?.name?.[0];
      return {
        ref: `PractitionerRole/${role.id}`,
        label: `${[...(name?.given ?? []), name?.family].filter(Boolean).join(' ') || role.id} (${text(role.specialty?.[0])})`,
      };
    });
}

function Assign({ c, reviewers, onDone }: { c: Case; reviewers: Reviewer[]; onDone: () => void }) {
  const [owner, setOwner] = useState(reviewers[0]?.ref ?? '');
  const [error, setError] = useState<string>();
  const id = `assign-${c.task.id}`;
  const assign = async (event: Event) => {
    event.preventDefault();
    try {
      await write(`Task/${c.task.id}/$assign`, 'POST', { resourceType: 'Parameters', parameter: [{ name: 'owner', valueReference: { reference: owner } }] });
      onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <form class="assign" onSubmit={assign}>
      <label for={id} class="visually-hidden">
        Reviewer for this case
      </label>
      <select id={id} value={owner} onChange={(e) => setOwner((e.target as HTMLSelectElement).value)}>
        {reviewers.map((r) => (
          <option value={r.ref}>{r.label}</option>
        ))}
      </select>
      <button type="submit">Assign</button>
      {error && (
        <span role="alert" class="error">
          {error}
        </span>
      )}
    </form>
  );
}

export function Queue({ user }: { user: User }) {
  const coordinator = user.role === 'coordinator' || user.role === 'admin';
  const [cases, setCases] = useState<Case[]>();
  const [error, setError] = useState<string>();
  const [reviewers, setReviewers] = useState<Reviewer[]>([]);
  const [filters, setFilters] = useState<Filters>({ show: 'open', owner: coordinator ? 'all' : 'mine', priority: '', specialty: '' });
  const reload = () =>
    loadCases().then(
      (found) => (setCases(found), setError(undefined)),
      (err: Error) => setError(err.message),
    );
  useEffect(() => {
    document.title = 'Queue · Second opinion workbench';
    void reload();
    if (coordinator) void loadReviewers().then(setReviewers, () => undefined);
    const timer = setInterval(() => void reload(), refreshMs);
    return () => clearInterval(timer);
  }, []);
  const set = (key: keyof Filters) => (e: Event) => setFilters({ ...filters, [key]: (e.target as HTMLSelectElement).value });
  const shown = (cases ?? []).filter((c) => matches(c, filters, user));
  const open = (cases ?? []).filter((c) => isOpen(c.task));
  const counts = {
    open: open.length,
    overdue: open.filter((c) => isOverdue(c.task)).length,
    waiting: open.filter((c) => c.task.status === 'on-hold').length,
    unassigned: open.filter((c) => !c.task.owner).length,
  };
  const specialties = [...new Set((cases ?? []).map((c) => specialtyOf(c.request)))].sort();
  return (
    <section aria-labelledby="queue-title">
      <h1 id="queue-title" tabIndex={-1}>
        {coordinator ? 'All cases' : 'My cases'}
      </h1>
      <ul class="counts" aria-label="Counts">
        <li data-count="open">
          <strong>{counts.open}</strong> open
        </li>
        <li data-count="overdue" class={counts.overdue ? 'overdue' : ''}>
          <strong>{counts.overdue}</strong> overdue
        </li>
        <li data-count="waiting">
          <strong>{counts.waiting}</strong> awaiting information
        </li>
        {coordinator && (
          <li data-count="unassigned">
            <strong>{counts.unassigned}</strong> unassigned
          </li>
        )}
      </ul>
      <form class="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <Filter label="Show" name="show" value={filters.show} onChange={set('show')} options={shows} />
        {coordinator && <Filter label="Owner" name="owner" value={filters.owner} onChange={set('owner')} options={owners} />}
        <Filter label="Priority" name="priority" value={filters.priority} onChange={set('priority')} options={priorities} />
        <Filter
          label="Specialty"
          name="specialty"
          value={filters.specialty}
          onChange={set('specialty')}
          options={[['', 'Any'], ...specialties.map((x) => [x, x])]}
        />
      </form>
      <Alert text={error} />
      {!cases ? (
        <p class="loading">Loading the cases…</p>
      ) : (
        <table class="queue" data-loaded="true">
          <caption class="visually-hidden">Cases sorted by due date; {shown.length} shown</caption>
          <thead>
            <tr>
              <th scope="col">Patient</th>
              <th scope="col">Question</th>
              <th scope="col">Specialty</th>
              <th scope="col">Priority</th>
              <th scope="col">Due</th>
              <th scope="col">Status</th>
              <th scope="col">{coordinator ? 'Owner' : 'Open'}</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((c) => (
              <tr data-task={c.task.id} class={isOverdue(c.task) ? 'overdue' : ''}>
                <td>
                  <a href={`#/case/${c.task.id}`} aria-label={`${sexOf(c.patient)}, ${ageOf(c.patient)} y: open the case`}>
                    {sexOf(c.patient)}, {ageOf(c.patient)} y
                  </a>
                </td>
                <td class="question">{question(c.request)}</td>
                <td>{specialtyOf(c.request)}</td>
                <td>{c.request?.priority ?? c.task.priority ?? 'routine'}</td>
                <td>
                  {formatDate(dueOf(c.task))} {isOverdue(c.task) && <span class="badge overdue">overdue</span>}
                </td>
                <td data-status={businessStatus(c.task)}>{statusName(businessStatus(c.task)) || c.task.status}</td>
                <td>
                  {coordinator && !c.task.owner && isOpen(c.task) ? (
                    <Assign c={c} reviewers={reviewers} onDone={() => void reload()} />
                  ) : coordinator ? (
                    (c.task.owner?.reference ?? '')
                  ) : (
                    <a href={`#/case/${c.task.id}`}>Open</a>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cases && !shown.length && <p>No case matches these filters.</p>}
    </section>
  );
}
