import { getSearchParameters, getSearchParameterDetails, evalFhirPathTyped, toTypedValue, Operator } from '@medplum/core';
import { loadBaseDefinitions } from './dist/src/conformance/base-definitions.js';
loadBaseDefinitions();
const c = { resourceType: 'Condition', subject: { reference: 'Patient/1' }, code: { coding: [{ system: 's', code: 'c' }] }, onsetPeriod: { start: '2020-01-01' } };
for (const code of ['patient', 'subject', 'code', 'onset-date', 'clinical-status']) {
  const sp = getSearchParameters('Condition')[code];
  const d = getSearchParameterDetails('Condition', sp);
  console.log(code, sp.type, JSON.stringify(evalFhirPathTyped(d.parsedExpression, [toTypedValue(c)])));
}
const p = getSearchParameters('Patient'); console.log(Object.keys(p).join(','));
console.log(JSON.stringify(Operator));
