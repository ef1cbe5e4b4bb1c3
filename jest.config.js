/** Unit, integration and e2e tests; every database test runs against a real PostgreSQL. */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['<rootDir>/test/{unit,integration,e2e}/**/*.spec.ts'],
  transform: { '^.+\\.ts$': swc },
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  // Every response a test receives is checked against the OpenAPI document the api serves.
  setupFilesAfterEnv: ['<rootDir>/test/support/contract-setup.ts'],
  maxWorkers: 2,
  testTimeout: 60_000,
};
