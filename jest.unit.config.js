// Unit tests of the pure parts (test/unit): no database, no HTTP, no global setup, no build first.
// ts-jest only transpiles (types are checked by `npm run build`), so the run takes seconds.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/unit'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  // Sources import each other as `./x.js` (NodeNext); here they are the `.ts` files themselves.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/test/unit/tsconfig.json', diagnostics: false }] },
};
