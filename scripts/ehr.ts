// `npm run ehr`: a referring hospital's FHIR server to try the service with by hand (README, "Try it"):
// the demo's peer (@medplum/fhir-router over HTTP) on 127.0.0.1:EHR_PORT (8081), holding the patient
// the example request in profiles/examples names (Patient/example-patient, with its referrer and
// pathology report) and the demo's synthetic stories. Every name and value is invented. Ctrl-C stops it.
import type { Resource } from '@medplum/fhirtypes';
import { startReferringEhr } from './peer/referring-ehr.js';
import { seedStories } from './peer/stories.js';

const ehr = await startReferringEhr({ port: Number(process.env.EHR_PORT ?? 8081) });
const subject = { reference: 'Patient/example-patient' };
const examples: Resource[] = [
  { resourceType: 'Patient', id: 'example-patient', name: [{ family: 'Example', given: ['Maria'] }], gender: 'female', birthDate: '1968-03-14' },
  { resourceType: 'Practitioner', id: 'example-referrer', name: [{ family: 'Referrer', given: ['Ines'], prefix: ['Dr'] }] },
  {
    resourceType: 'Condition',
    id: 'example-diagnosis',
    subject,
    code: {
      coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'C50.911', display: 'Malignant neoplasm of unspecified site of right female breast' }],
    },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
  },
  {
    resourceType: 'DiagnosticReport',
    id: 'example-pathology',
    status: 'final',
    subject,
    code: { text: 'Breast core biopsy, histopathology' },
    conclusion: 'Invasive ductal carcinoma, grade 2; HER2 2+ by IHC.',
  },
];
// This repository keeps the id a resource comes with, so the example request's references resolve.
for (const resource of examples) await ehr.repo.createResource(resource);
const stories = await seedStories(ehr.repo);

process.stdout.write(`referring EHR (FHIR): ${ehr.base}\n`);
process.stdout.write(`  the example request's patient: ${ehr.base}/Patient/example-patient\n`);
for (const story of stories) process.stdout.write(`  "${story.title}": ${ehr.base}/Patient/${story.patientId}\n`);
const stop = (): void => void ehr.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
