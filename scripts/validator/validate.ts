// npm run validate:hl7 [file-or-dir ...] — the HL7 validator over profiles/ (or what is named), printing
// each error and a summary; exits 1 on any error that is not an invalid example's.
import path from 'node:path';
import { errorsOf, profilesDir, runValidator, type Hl7Verdict } from './client.js';

const targets = process.argv.slice(2);
const lines = runValidator(targets.length ? targets : [profilesDir]);
const verdicts = lines.filter((l): l is Hl7Verdict & Record<string, unknown> => 'file' in l);
const invalidExamples = path.join(profilesDir, 'examples', 'invalid');
let unexpected = 0;
for (const verdict of verdicts) {
  const expectedToFail = path.resolve(verdict.file).startsWith(invalidExamples);
  const errors = errorsOf(verdict);
  if (expectedToFail && !errors.length) {
    unexpected++;
    console.log(`${verdict.file}: an invalid example that passes`);
  }
  for (const e of errors) {
    if (!expectedToFail) unexpected++;
    console.log(`${verdict.file}: ${e.severity} at ${e.location}: ${e.message}${expectedToFail ? ' (expected)' : ''}`);
  }
}
console.log(JSON.stringify(lines.at(-1)));
console.log(unexpected ? `${unexpected} unexpected` : 'no unexpected errors');
process.exitCode = unexpected ? 1 : 0;
