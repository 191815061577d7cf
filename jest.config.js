/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // ts-jest only transpiles (isolatedModules): `npm run typecheck` type-checks the whole tree once.
  transform: {
    '^.+\\.[tj]s$': [
      'ts-jest',
      {
        isolatedModules: true,
        tsconfig: { allowJs: true, esModuleInterop: true, module: 'commonjs', target: 'es2022' },
      },
    ],
  },
  // jose is ESM-only; let ts-jest turn it into CommonJS for jest's module loader.
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  // fast-check's seed fixed for every property test (FC_SEED and FUZZ_RUNS override it).
  setupFiles: ['<rootDir>/test/support/fastCheck.ts'],
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 30000,
};
