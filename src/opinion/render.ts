// The readable form of an opinion: a small HTML document made from the report's own elements, every
// value escaped, kept in presentedForm beside whatever the reviewer attached.
import type { Attachment, CodeableConcept, DiagnosticReport } from '@medplum/fhirtypes';
import type { Conformance } from '../conformance/artifacts.js';
import { followUpOf } from './follow-up.js';

export const renderingTitle = 'Second opinion (as signed by the service)';

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]);
const named = (concept: CodeableConcept | undefined): string => concept?.text ?? concept?.coding?.map((c) => c.display ?? c.code).join(', ') ?? '';

/** The report with its rendering (a previous one replaced, the reviewer's own attachments kept). */
export function withRendering(report: DiagnosticReport, conformance: Conformance): DiagnosticReport {
  const { canonical } = conformance;
  const concordance = report.extension?.find((e) => e.url === `${canonical}/StructureDefinition/concordance`)?.valueCodeableConcept;
  const recommendations = (report.extension ?? []).filter((e) => e.url === `${canonical}/StructureDefinition/recommendation`).map((e) => e.valueString ?? '');
  const followUp = followUpOf(report, conformance);
  if (followUp) recommendations.push(`See the patient (${followUp.kind.display ?? followUp.kind.code})${followUp.reason ? `: ${followUp.reason}` : ''}`);
  const section = (heading: string, body: string): string => (body ? `<h2>${heading}</h2>\n${body}\n` : '');
  const html = [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>${escape(renderingTitle)}</title></head><body>`,
    `<h1>${escape(named(report.code) || 'Second opinion')}</h1>`,
    `<p>Status: ${escape(report.status)}${report.issued ? `; issued ${escape(report.issued)}` : ''}</p>`,
    section('Conclusion', report.conclusion ? `<p>${escape(report.conclusion)}</p>` : ''),
    section('Diagnosis', (report.conclusionCode ?? []).map((c) => `<p>${escape(named(c))}</p>`).join('\n')),
    section('Compared with the first opinion', concordance ? `<p>${escape(named(concordance))}</p>` : ''),
    section('Recommendations', recommendations.length ? `<ol>${recommendations.map((r) => `<li>${escape(r)}</li>`).join('')}</ol>` : ''),
    '</body></html>',
  ].join('\n');
  const rendering: Attachment = { contentType: 'text/html; charset=utf-8', title: renderingTitle, data: Buffer.from(html).toString('base64') };
  return { ...report, presentedForm: [...(report.presentedForm ?? []).filter((a) => a.title !== renderingTitle), rendering] };
}
