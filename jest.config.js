/** Root jest: exporter unit tests and the integration / end-to-end suites in test/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/exporter/src', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/fixtures/', '/dist/'],
  transform: { '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }] },
  testTimeout: 30000,
};
