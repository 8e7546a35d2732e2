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
      name: 'store-imports-nothing-above-it',
      severity: 'error',
      comment: 'src/store/ is the bottom layer: it may import the database, the logger and the configuration, nothing that builds on it.',
      from: { path: '^src/store/' },
      to: { path: '^src/', pathNot: ['^src/store/', '^src/database/', '^src/logger\\.ts$', '^src/config\\.ts$'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
