// Build step (`npm run build`): writes the structure validators of the types the service writes as
// ajv standalone code beside the compiled sources (see src/validation/precompiled.ts).
import { writePrecompiled } from '../src/validation/precompiled.js';

const { path, bytes } = writePrecompiled();
process.stdout.write(`structure validators: ${path} (${Math.round(bytes / 1024)} kB)\n`);
