/** The chaos suite: real worker and API processes killed, cut off and restarted. Runs one file at a time. */
const base = require('./jest.config');

module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/chaos/**/*.spec.ts'],
  maxWorkers: 1,
  testTimeout: 240_000,
};
