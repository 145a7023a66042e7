// force timezone to UTC to allow tests to work regardless of local timezone
// generally used by snapshots, but can affect specific tests
process.env.TZ = 'UTC';

const base = require('./.config/jest.config');
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');

module.exports = {
  // Jest configuration provided by Grafana scaffolding
  ...base,
  transform: {
    ...base.transform,
    // d3-color / d3-interpolate ship .mjs files now.
    '^.+\\.mjs$': base.transform['^.+\\.(t|j)sx?$'],
  },
  // ESM-only dependencies of @grafana/data 13.2 must be transformed as well.
  transformIgnorePatterns: [nodeModulesToTransform([...grafanaESModules, '@react-hookz', '@ver0'])],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};
