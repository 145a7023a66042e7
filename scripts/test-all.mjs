#!/usr/bin/env node
// `npm test`: builds what the suites load, runs every suite (root jest: exporter + integration +
// browser; the plugin's own jest; lint/format/type checks), and ends with the one summary line
// CI reads: `tests: N passed, N failed`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.jest-results');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const hasPlugin = existsSync(join(root, 'grafana-plugin', 'package.json'));

let passed = 0;
let failed = 0;
const failures = [];

function run(title, cmd, args, opts = {}) {
  process.stdout.write(`\n=== ${title}: ${cmd} ${args.join(' ')}\n`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0' }, ...opts });
  return r.status ?? 1;
}

/** A step that is not a test suite (build, lint): one test, passed or failed. */
function check(title, cmd, args) {
  if (run(title, cmd, args) === 0) passed++;
  else {
    failed++;
    failures.push(title);
  }
}

function jestSuite(title, cmd, args, resultFile) {
  const status = run(title, cmd, args);
  if (!existsSync(resultFile)) {
    failed++;
    failures.push(`${title} (no results, exit ${status})`);
    return;
  }
  const r = JSON.parse(readFileSync(resultFile, 'utf8'));
  // A suite that fails to load has no tests but counts: one failure per broken suite.
  const broken = r.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
  passed += r.numPassedTests;
  failed += r.numFailedTests + broken;
  for (const s of r.testResults) {
    for (const a of s.assertionResults) if (a.status === 'failed') failures.push(`${a.ancestorTitles.concat(a.title).join(' › ')}`);
    if (s.status === 'failed' && s.assertionResults.length === 0) failures.push(`${s.name}: ${String(s.message).split('\n')[0]}`);
  }
  if (r.numPendingTests > 0) process.stdout.write(`note: ${r.numPendingTests} tests skipped in ${title}\n`);
}

check('build', 'npm', ['run', 'build']);
if (pkg.scripts['build:fake-nvml']) check('build fake libnvidia-ml', 'npm', ['run', 'build:fake-nvml']);
if (pkg.scripts['build:fake-amdsmi']) check('build fake libamd_smi', 'npm', ['run', 'build:fake-amdsmi']);
check('typecheck', 'npx', ['tsc', '-p', '.', '--noEmit']);
check('eslint', 'npx', ['eslint', 'exporter/src', 'test']);
check('prettier', 'npx', ['prettier', '--check', 'exporter/src/**/*.ts', 'test/**/*.ts']);

const rootJson = join(out, 'root.json');
jestSuite('jest (exporter, integration, browser)', 'npx', ['jest', '--ci', '--runInBand', '--json', `--outputFile=${rootJson}`], rootJson);

if (hasPlugin) {
  const pluginJson = join(out, 'grafana-plugin.json');
  check('grafana-plugin typecheck', 'npm', ['run', 'typecheck', '-w', 'grafana-plugin']);
  check('grafana-plugin lint', 'npm', ['run', 'lint', '-w', 'grafana-plugin']);
  jestSuite('jest (grafana-plugin)', 'npm', ['run', 'test:ci', '-w', 'grafana-plugin', '--', '--json', `--outputFile=${pluginJson}`], pluginJson);
}

if (failures.length) {
  process.stdout.write(`\nFailed:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
}
process.stdout.write(`\ntests: ${passed} passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
