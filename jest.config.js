// The suite runs the compiled tests (npm test builds first) against a real database and real HTTP.
// The unit tests (test/unit) have their own configuration, jest.unit.config.js; npm test runs them first.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  testPathIgnorePatterns: ['/dist/test/unit/'],
  globalSetup: '<rootDir>/dist/test/global-setup.js',
  globalTeardown: '<rootDir>/dist/test/global-teardown.js',
  testTimeout: 60_000,
  maxWorkers: 2,
};
