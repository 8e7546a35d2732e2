// The opinion editor: conclusion, the diagnosis as coded, how it compares with the first
// (concordance), recommendations, whether to see the patient (a follow-up the hospital receives as a
// proposal), a preview of the
// report, saving as preliminary, and finalising, which signs it and sends it to the referring
// hospital after a confirmation; then the signature's check ($verify) and the delivery's state.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { DiagnosticReport, Extension, Parameters, Task } from '@medplum/fhirtypes';
import type { User } from './auth.js';
import type { CaseData } from './case-page.js';
import { businessStatus } from './cases.js';
import { read, search, write } from './fhir.js';
import { settings, statusName } from './settings.js';
import { Alert } from './alert.js';

interface Draft {
  conclusion: string;
  code: string;
  display: string;
  concordance: string;
  recommendations: string[];
  /** A code of the follow-up CodeSystem, or '' for none. */
  seePatient: string;
  seeWhy: string;
}

const seeLine = (d: Draft): string | undefined => {
  const kind = settings().followUp.find((c) => c.code === d.seePatient);
  return kind ? `See the patient (${kind.display})${d.seeWhy.trim() ? `: ${d.seeWhy.trim()}` : ''}` : undefined;
};

function draftOf(report: DiagnosticReport | undefined, data: CaseData, canonical: string): Draft {
  const reason = data.request.reasonCode?.[0]?.coding?.[0];
  const coded = report?.conclusionCode?.[0]?.coding?.[0] ?? reason;
  const ext = (name: string) => (report?.extension ?? []).filter((e) => e.url === `${canonical}/StructureDefinition/${name}`);
  const recommendations = ext('recommendation').map((e) => e.valueString ?? '');
  const followUp = ext('follow-up')[0]?.extension ?? [];
  return {
    conclusion: report?.conclusion ?? '',
    code: coded?.code ?? '',
    display: coded?.display ?? '',
    concordance: ext('concordance')[0]?.valueCodeableConcept?.coding?.[0]?.code ?? '',
    recommendations: recommendations.concat(['']).slice(0, Math.max(1, recommendations.length)),
    seePatient: followUp.find((e) => e.url === 'kind')?.valueCoding?.code ?? '',
    seeWhy: followUp.find((e) => e.url === 'reason')?.valueString ?? '',
  };
}

function reportOf(d: Draft, status: 'preliminary' | 'final', data: CaseData, user: User, existing?: DiagnosticReport): DiagnosticReport {
  const { canonical } = settings();
  const system = data.request.reasonCode?.[0]?.coding?.[0]?.system ?? 'http://hl7.org/fhir/sid/icd-10-cm';
  const recommendations = d.recommendations.map((r) => r.trim()).filter(Boolean);
  const extension: Extension[] = [
    ...(d.concordance
      ? [
          {
            url: `${canonical}/StructureDefinition/concordance`,
            valueCodeableConcept: { coding: [{ system: `${canonical}/CodeSystem/concordance`, code: d.concordance }] },
          },
        ]
      : []),
    ...recommendations.map((r) => ({ url: `${canonical}/StructureDefinition/recommendation`, valueString: r })),
    // Its own extension, not a line of text: the write-back turns it into a proposed ServiceRequest.
    ...(d.seePatient
      ? [
          {
            url: `${canonical}/StructureDefinition/follow-up`,
            extension: [
              { url: 'kind', valueCoding: { system: `${canonical}/CodeSystem/follow-up`, code: d.seePatient } },
              ...(d.seeWhy.trim() ? [{ url: 'reason', valueString: d.seeWhy.trim() }] : []),
            ],
          },
        ]
      : []),
  ];
  return {
    ...(existing ?? {}),
    resourceType: 'DiagnosticReport',
    meta: { profile: [`${canonical}/StructureDefinition/second-opinion-report`] },
    status,
    category: [{ coding: [{ system: `${canonical}/CodeSystem/second-opinion-category`, code: 'second-opinion', display: 'Second opinion' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '11488-4', display: 'Consult note' }], text: 'Second opinion' },
    subject: data.task.for,
    basedOn: [{ reference: `ServiceRequest/${data.request.id}` }],
    performer: [{ reference: user.fhirUser }],
    ...(d.conclusion.trim() ? { conclusion: d.conclusion.trim() } : {}),
    ...(d.code.trim() ? { conclusionCode: [{ coding: [{ system, code: d.code.trim(), ...(d.display.trim() ? { display: d.display.trim() } : {}) }] }] } : {}),
    ...(extension.length ? { extension } : {}),
  } as DiagnosticReport;
}

function Preview({ d, title = 'Preview of the report' }: { d: Draft; title?: string }) {
  const concordance = settings().concordance.find((c) => c.code === d.concordance)?.display ?? 'not chosen';
  const recommendations = [...d.recommendations.filter((r) => r.trim()), ...(seeLine(d) ? [seeLine(d) as string] : [])];
  return (
    <section class="preview" aria-labelledby="preview-title">
      <h3 id="preview-title">{title}</h3>
      <h4>Conclusion</h4>
      <p>{d.conclusion || '(no conclusion yet)'}</p>
      <h4>Diagnosis</h4>
      <p>{d.code ? `${d.display} (${d.code})` : '(not coded)'}</p>
      <h4>Compared with the first opinion</h4>
      <p data-preview="concordance">{concordance}</p>
      <h4>Recommendations</h4>
      {recommendations.length ? (
        <ol>
          {recommendations.map((r) => (
            <li>{r}</li>
          ))}
        </ol>
      ) : (
        <p>(none)</p>
      )}
    </section>
  );
}

function AfterSigning({ report, data, onChange }: { report: DiagnosticReport; data: CaseData; onChange: () => Promise<void> }) {
  const [verified, setVerified] = useState<boolean>();
  const [task, setTask] = useState<Task>(data.task);
  const state = businessStatus(task);
  useEffect(() => {
    void read<Parameters>(`DiagnosticReport/${report.id}/$verify`).then((p) => setVerified(p.parameter?.find((x) => x.name === 'valid')?.valueBoolean));
  }, [report.id]);
  useEffect(() => {
    // Until the delivery is settled; the case's header follows.
    if (state !== businessStatus(data.task)) void onChange();
    if (state === 'opinion-delivered') return undefined;
    const timer = setInterval(() => void read<Task>(`Task/${data.task.id}`).then(setTask), 1500);
    return () => clearInterval(timer);
  }, [state]);
  return (
    <section class="signed" aria-labelledby="signed-title">
      <h3 id="signed-title">Signed opinion</h3>
      <p data-verify={verified === undefined ? 'checking' : String(verified)}>
        Signature: {verified === undefined ? 'checking…' : verified ? 'verified, the report is as it was signed' : 'does NOT verify'}
      </p>
      <p role="status" data-delivery={state}>
        Delivery to the referring hospital: {statusName(state)}
      </p>
      <Preview d={draftOf(report, data, settings().canonical)} title={`The opinion as signed (${report.status}, ${report.issued?.slice(0, 10) ?? ''})`} />
    </section>
  );
}

export function OpinionEditor({ data, user, onChange }: { data: CaseData; user: User; onChange: () => Promise<void> }) {
  const { canonical, concordance, followUp } = settings();
  const [report, setReport] = useState<DiagnosticReport>();
  const [d, setD] = useState<Draft>();
  const [message, setMessage] = useState<string>();
  const [error, setError] = useState<string>();
  const confirm = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    void search<DiagnosticReport>(`DiagnosticReport?based-on=ServiceRequest/${data.request.id}&_count=10`).then(
      (found) => {
        const latest = found.find((r) => r.category?.some((c) => c.coding?.some((x) => x.code === 'second-opinion')));
        setReport(latest);
        setD(draftOf(latest, data, canonical));
      },
      (err: Error) => setError(err.message),
    );
  }, [data.request.id]);
  if (!d) return <p class="loading">Loading the opinion…</p>;
  const signed = report && ['final', 'amended'].includes(report.status);
  const change = (key: keyof Draft) => (e: Event) => setD({ ...d, [key]: (e.target as HTMLInputElement).value });
  const save = async (status: 'preliminary' | 'final') => {
    try {
      const body = reportOf(d, status, data, user, report);
      const saved = await (report?.id
        ? write<DiagnosticReport>(`DiagnosticReport/${report.id}`, 'PUT', body)
        : write<DiagnosticReport>('DiagnosticReport', 'POST', body));
      setReport(saved);
      setError(undefined);
      setMessage(status === 'final' ? 'The opinion is signed and on its way to the referring hospital.' : 'Saved as preliminary.');
      if (status === 'final') await onChange();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  if (signed) return <AfterSigning report={report} data={data} onChange={onChange} />;
  const working = ['in-progress', 'on-hold'].includes(data.task.status);
  return (
    <section class="opinion" aria-labelledby="opinion-title">
      <h2 id="opinion-title">The opinion</h2>
      {!working && <p>Start the review to write the opinion.</p>}
      <form class="editor" onSubmit={(e) => e.preventDefault()}>
        <label for="conclusion">Conclusion</label>
        <textarea id="conclusion" rows={5} value={d.conclusion} onInput={change('conclusion')} />
        <fieldset>
          <legend>Diagnosis (ICD-10-CM)</legend>
          <label for="code">Code</label>
          <input id="code" value={d.code} onInput={change('code')} />
          <label for="display">Name</label>
          <input id="display" value={d.display} onInput={change('display')} />
        </fieldset>
        <fieldset>
          <legend>Compared with the first opinion</legend>
          {concordance.map((c) => (
            <label class="choice">
              <input type="radio" name="concordance" value={c.code} checked={d.concordance === c.code} onChange={change('concordance')} /> {c.display}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Recommendations</legend>
          {d.recommendations.map((r, i) => (
            <>
              <label for={`recommendation-${i}`}>Recommendation {i + 1}</label>
              <input
                id={`recommendation-${i}`}
                value={r}
                onInput={(e) => setD({ ...d, recommendations: d.recommendations.map((x, j) => (j === i ? (e.target as HTMLInputElement).value : x)) })}
              />
            </>
          ))}
          <button type="button" class="secondary" onClick={() => setD({ ...d, recommendations: [...d.recommendations, ''] })}>
            Add a recommendation
          </button>
          <label for="see-patient">See the patient</label>
          <select id="see-patient" value={d.seePatient} onChange={change('seePatient')}>
            <option value="">No</option>
            {followUp.map((c) => (
              <option value={c.code}>Yes: {c.display}</option>
            ))}
          </select>
          {d.seePatient && (
            <>
              <label for="see-why">Why</label>
              <input id="see-why" value={d.seeWhy} onInput={change('seeWhy')} />
            </>
          )}
        </fieldset>
        <div class="actions">
          <button type="button" class="secondary" disabled={!working} onClick={() => void save('preliminary')}>
            Save as preliminary
          </button>
          <button type="button" id="finalise" disabled={!working} onClick={() => confirm.current?.showModal()}>
            Finalise and sign…
          </button>
        </div>
      </form>
      <Preview d={d} />
      <dialog ref={confirm} aria-labelledby="confirm-title">
        <h3 id="confirm-title">Sign and send this opinion?</h3>
        <p>It is signed with the service's key and written into the patient's chart at the referring hospital. After this it changes only by amendment.</p>
        <form method="dialog" class="actions">
          <button type="submit" class="secondary" value="cancel">
            Not yet
          </button>
          <button type="submit" id="sign-and-send" value="sign" onClick={() => void save('final')}>
            Sign and send
          </button>
        </form>
      </dialog>
      {message && <p role="status">{message}</p>}
      <Alert text={error} />
    </section>
  );
}
