// The import graph's rules, checked by `npm run check:imports` (dependency-cruiser) in CI.
// Type-only imports count too (tsPreCompilationDeps): a cycle through types is still a cycle to read.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycle: each module can be read knowing only what it imports.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'base-imports-nothing-of-ours',
      severity: 'error',
      comment: 'src/base/ (FHIR vocabulary: resource types, ids, OperationOutcome errors, base definitions) is below everything: it imports only libraries.',
      from: { path: '^src/base/' },
      to: { path: '^src/', pathNot: ['^src/base/'] },
    },
    {
      name: 'store-imports-nothing-above-it',
      severity: 'error',
      comment: 'src/store/ may import src/base/, the database, the logger and the configuration, nothing that builds on it.',
      from: { path: '^src/store/' },
      to: { path: '^src/', pathNot: ['^src/store/', '^src/base/', '^src/database/', '^src/logger\\.ts$', '^src/config\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
