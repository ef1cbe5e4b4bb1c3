/**
 * The benchmark harness at toy sizes (test/bench): every bench script the README's figures come from runs
 * end to end. One file at a time and apart from the other suites: it keeps both cores busy for a minute or two.
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/bench/**/*.spec.ts'],
  maxWorkers: 1,
  testTimeout: 360_000,
};
