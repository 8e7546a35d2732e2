// The conversation with the referrer: the reviewer's questions (CommunicationRequest) and the answers
// and notes (Communication), in order; asking puts the case on hold until the answer comes, which
// this page shows as it arrives.
import { useEffect, useState } from 'preact/hooks';
import type { Communication, CommunicationRequest } from '@medplum/fhirtypes';
import type { User } from './auth.js';
import type { CaseData } from './case-page.js';
import { search, write } from './fhir.js';
import { Alert } from './alert.js';

const refreshMs = 3000;

interface Message {
  at: string;
  from: string;
  text: string;
  kind: 'question' | 'answer' | 'note';
}

async function loadThread(requestRef: string, user: User): Promise<Message[]> {
  const [asked, said] = await Promise.all([
    search<CommunicationRequest>(`CommunicationRequest?based-on=${requestRef}&_count=200`),
    search<Communication>(`Communication?based-on=${requestRef}&_count=200`),
  ]);
  const answers = await Promise.all(asked.map((q) => search<Communication>(`Communication?based-on=CommunicationRequest/${q.id}&_count=50`)));
  const seen = new Set<string>();
  const messages: Message[] = [];
  for (const q of asked) {
    messages.push({
      at: q.authoredOn ?? q.meta?.lastUpdated ?? '',
      from: q.requester?.reference === user.fhirUser ? 'You' : 'Reviewer',
      text: payload(q),
      kind: 'question',
    });
  }
  for (const c of [...said, ...answers.flat()]) {
    if (seen.has(c.id as string)) continue;
    seen.add(c.id as string);
    const isAnswer = c.basedOn?.some((b) => b.reference?.startsWith('CommunicationRequest/'));
    messages.push({
      at: c.sent ?? c.meta?.lastUpdated ?? '',
      from: c.sender?.reference === user.fhirUser ? 'You' : 'Referrer',
      text: payload(c),
      kind: isAnswer ? 'answer' : 'note',
    });
  }
  return messages.sort((a, b) => a.at.localeCompare(b.at));
}

const payload = (m: Communication | CommunicationRequest): string => (m.payload ?? []).map((p) => p.contentString ?? '').join(' ');

export function Conversation({ data, user, onChange }: { data: CaseData; user: User; onChange: () => Promise<void> }) {
  const requestRef = `ServiceRequest/${data.request.id}`;
  const [thread, setThread] = useState<Message[]>();
  const [draft, setDraft] = useState('');
  const [error, setError] = useState<string>();
  const [sent, setSent] = useState<string>();
  const reload = () => loadThread(requestRef, user).then(setThread, (err: Error) => setError(err.message));
  useEffect(() => {
    void reload();
    const timer = setInterval(() => void reload(), refreshMs);
    return () => clearInterval(timer);
  }, [requestRef]);
  useEffect(() => {
    // The answer ends the hold: the case's state follows the thread.
    if (data.task.status === 'on-hold' && thread?.at(-1)?.kind === 'answer') void onChange();
  }, [thread]);
  const ask = async (event: Event) => {
    event.preventDefault();
    if (!draft.trim()) return setError('Write the question first');
    try {
      await write('CommunicationRequest', 'POST', {
        resourceType: 'CommunicationRequest',
        status: 'active',
        subject: data.task.for,
        basedOn: [{ reference: requestRef }],
        requester: { reference: user.fhirUser },
        recipient: data.request.requester ? [data.request.requester] : undefined,
        authoredOn: new Date().toISOString(),
        payload: [{ contentString: draft.trim() }],
      });
      setDraft('');
      setError(undefined);
      setSent('Your question was sent to the referrer; the case is on hold until the answer comes.');
      await Promise.all([reload(), onChange()]);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const working = ['in-progress', 'on-hold'].includes(data.task.status);
  return (
    <section aria-labelledby="conversation-title" class="conversation">
      <h2 id="conversation-title">Conversation with the referrer</h2>
      {data.task.status === 'on-hold' && (
        <p class="hold" data-hold="true">
          The case is on hold, awaiting the referrer's answer.
        </p>
      )}
      {!thread ? (
        <p class="loading">Loading the thread…</p>
      ) : thread.length ? (
        <ol class="thread" data-count={thread.length}>
          {thread.map((m) => (
            <li class={m.kind} data-kind={m.kind}>
              <span class="meta">
                {m.from}, {m.at.replace('T', ' ').slice(0, 16)}
              </span>
              <p>{m.text}</p>
            </li>
          ))}
        </ol>
      ) : (
        <p>No messages yet.</p>
      )}
      {working ? (
        <form onSubmit={ask} class="ask">
          <label for="question">Ask the referrer</label>
          <textarea id="question" rows={3} value={draft} onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)} />
          <button type="submit" id="send-question">
            Send the question
          </button>
        </form>
      ) : (
        <p>Start the review to ask the referrer a question.</p>
      )}
      {sent && <p role="status">{sent}</p>}
      <Alert text={error} />
    </section>
  );
}
