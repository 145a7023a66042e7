import { spawnSync } from 'child_process';
import { readdirSync, readFileSync } from 'fs';
import { createServer } from 'net';
import { join, resolve } from 'path';
import { parse as parseYaml } from 'yaml';

/** Shared by the Prometheus, dashboard and compose suites. */

export const REPO = resolve(__dirname, '..', '..');
export const RULES_FILE = join(REPO, 'dashboards/alerts/jouleflow.rules.yml');
export const RULES_TEST_FILE = join(REPO, 'dashboards/alerts/jouleflow.rules.test.yml');
export const GRAFANA_ALERTS_FILE = join(REPO, 'dashboards/provisioning/alerting/jouleflow-alerts.yml');
export const PROMETHEUS_CONFIG = join(REPO, 'deploy/prometheus/prometheus.yml');
export const ALERTS_DIR = join(REPO, 'dashboards/alerts');

/** Every Prometheus rule file in dashboards/alerts (`*.rules.yml`), each with its `*.rules.test.yml`. */
export function ruleFiles(): string[] {
  return readdirSync(ALERTS_DIR)
    .filter((f) => f.endsWith('.rules.yml'))
    .sort()
    .map((f) => join(ALERTS_DIR, f));
}

/** The promtool unit-test file of a rule file: x.rules.yml → x.rules.test.yml. */
export function ruleTestFile(rulesFile: string): string {
  return rulesFile.replace(/\.rules\.yml$/, '.rules.test.yml');
}

/**
 * Fails (never skips) when a binary the suite needs is missing, naming the Debian package.
 * Returns the binary's --version output.
 */
export function requireBinary(cmd: string, debianPackage: string, versionArgs: string[] = ['--version']): string {
  const r = spawnSync(cmd, versionArgs, { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) {
    throw new Error(
      `${cmd} is not installed or does not run (${r.error?.message ?? `exit ${r.status}`}); ` +
        `install the Debian package "${debianPackage}": apt-get install -y ${debianPackage}`,
    );
  }
  return `${r.stdout}${r.stderr}`;
}

export interface PromRule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface PromRuleFile {
  groups: Array<{ name: string; interval?: string; rules: PromRule[] }>;
}

export function readYaml<T>(file: string): T {
  return parseYaml(readFileSync(file, 'utf8')) as T;
}

export function loadRules(file = RULES_FILE): PromRuleFile {
  return readYaml<PromRuleFile>(file);
}

export function alertRules(rules: PromRuleFile): PromRule[] {
  return rules.groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined));
}

/** The threshold constants: `record: jouleflow:threshold:X` with `expr: vector(N)`. */
export function thresholdConstants(rules: PromRuleFile): Map<string, number> {
  const out = new Map<string, number>();
  for (const g of rules.groups) {
    for (const r of g.rules) {
      if (!r.record?.startsWith('jouleflow:threshold:')) continue;
      const m = /^\s*vector\(\s*([-+0-9.eE]+)\s*\)\s*$/.exec(r.expr);
      if (!m) throw new Error(`threshold ${r.record} must be a constant vector(N), got: ${r.expr}`);
      out.set(r.record, Number(m[1]));
    }
  }
  return out;
}

/** Prometheus / Grafana durations ("90s", "5m", "1h30m", "0m") in seconds. */
export function durationSeconds(d: string | undefined): number {
  if (d === undefined || d === '' || d === '0') return 0;
  const unit: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  let rest = d.trim();
  while (rest.length) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/.exec(rest);
    if (!m) throw new Error(`bad duration "${d}"`);
    total += Number(m[1]) * unit[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** A free TCP port on 127.0.0.1 (closed again before returning). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
