// Build step (`npm run build`): what a start would otherwise compute or read whole, written beside the
// compiled sources: the structure validators of the types the service writes as ajv standalone code
// (src/validation/precompiled.ts) and the definitions of those types apart from all of FHIR's
// (src/base/base-definitions.ts).
import { writeStoredTypeDefinitions } from '../src/base/base-definitions.js';
import { writePrecompiled } from '../src/validation/precompiled.js';

for (const { path, bytes } of [writePrecompiled(), writeStoredTypeDefinitions()]) {
  process.stdout.write(`precompiled: ${path} (${Math.round(bytes / 1024)} kB)\n`);
}
