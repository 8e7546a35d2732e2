// Build step (`npm run build`): what a start would otherwise compute or read whole, written beside the
// compiled sources: the structure validators of the types the service writes as ajv standalone code
// (src/validation/precompiled.ts), the definitions and search parameters of those types apart from
// all of FHIR's (src/base/base-definitions.ts), and FHIR's value sets that those types and profiles/ bind to
// (src/conformance/terminology.ts).
import { startDefinitions, writeStartDefinitions } from '../src/base/base-definitions.js';
import { loadConformance } from '../src/conformance/artifacts.js';
import { writeStartTerminology } from '../src/conformance/terminology.js';
import { writePrecompiled } from '../src/validation/precompiled.js';

const written = [writePrecompiled(), writeStartDefinitions()];
written.push(writeStartTerminology([startDefinitions()?.structures, loadConformance().artifacts]));
for (const { path, bytes } of written) {
  process.stdout.write(`precompiled: ${path} (${Math.round(bytes / 1024)} kB)\n`);
}
