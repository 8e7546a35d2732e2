// The suite runs the compiled tests (npm test builds first) against a real database and real HTTP.
// The unit tests (test/unit) have their own configuration, jest.unit.config.js; npm test runs them first.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  testPathIgnorePatterns: ['/dist/test/unit/'],
  // Compiled ES modules, run as they are: nothing for Babel to do.
  transform: {},
  globalSetup: '<rootDir>/dist/test/global-setup.js',
  // Disables, when a file starts, the AsyncLocalStorage instances the files before it used (see the file).
  setupFilesAfterEnv: ['<rootDir>/dist/test/async-context.js'],
  globalTeardown: '<rootDir>/dist/test/global-teardown.js',
  testTimeout: 60_000,
  maxWorkers: 2,
  // A worker exits once its last file's servers, clients and child processes have finished closing;
  // on a loaded machine that takes longer than jest's 500 ms default, which then reports a leak. A
  // real leak still shows: the worker is then killed after these 10 s with the same warning (and
  // --detectOpenHandles over the whole suite names nothing left open).
  workerGracefulExitTimeout: 10_000,
};
