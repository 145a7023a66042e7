import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';

/** One version everywhere it is written: packages, CHANGELOGs, the Helm chart; an Apache-2.0 LICENSE. */

const ROOT = path.resolve(__dirname, '../..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');
const pkg = (p: string) => JSON.parse(read(p)) as { version: string; license?: string };
const version = pkg('package.json').version;

it('the packages share one version', () => {
  expect(pkg('exporter/package.json').version).toBe(version);
  expect(pkg('grafana-plugin/package.json').version).toBe(version);
});

it.each(['CHANGELOG.md', 'grafana-plugin/CHANGELOG.md'])('%s starts with that version', (file) => {
  expect(/^## (\S+)/m.exec(read(file))?.[1]).toBe(version);
});

it("the Helm chart's appVersion is that version", () => {
  expect((parse(read('deploy/helm/jouleflow/Chart.yaml')) as { appVersion: string }).appVersion).toBe(version);
});

it('LICENSE is the Apache License 2.0 that package.json names', () => {
  expect(pkg('package.json').license).toBe('Apache-2.0');
  expect(read('LICENSE')).toMatch(/^\s+Apache License\s+Version 2\.0, January 2004/);
});
