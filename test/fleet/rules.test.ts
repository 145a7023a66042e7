import { spawnSync } from 'child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { basename, join } from 'path';
import { stringify as toYaml } from 'yaml';
import { durationSeconds, loadRules, readYaml, requireBinary, ruleTestFile } from '../prometheus/lib';
import { FLEET_RULES_FILE } from './lib';

/**
 * The fleet recording rules (dashboards/alerts/jouleflow-fleet.rules.yml): named
 * level:metric:operations, every `:increase<W>` window equal to its group's interval (else
 * sum_over_time over the recorded windows is not the energy in the range), every rule covered by
 * a promtool case, and every rule mutated (its value doubled, its grouping lost) to prove the
 * cases bite.
 */

const TEST_FILE = ruleTestFile(FLEET_RULES_FILE);
const fleet = loadRules(FLEET_RULES_FILE);
const records = fleet.groups.flatMap((g) => g.rules.map((r) => ({ group: g, rule: r })));

function promtoolTest(rulesText: string): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jouleflow-fleet-rules-'));
  try {
    writeFileSync(join(dir, basename(FLEET_RULES_FILE)), rulesText);
    copyFileSync(TEST_FILE, join(dir, basename(TEST_FILE)));
    const r = spawnSync('promtool', ['test', 'rules', basename(TEST_FILE)], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function mutant(name: string, f: (expr: string) => string): string {
  const copy = loadRules(FLEET_RULES_FILE);
  for (const g of copy.groups) for (const r of g.rules) if (r.record === name) r.expr = f(r.expr);
  return toYaml(copy);
}

beforeAll(() => {
  requireBinary('promtool', 'prometheus');
});

describe('fleet recording rules', () => {
  test('only recording rules, named level:metric:operations with a unit suffix', () => {
    for (const { rule } of records) {
      expect(rule.alert).toBeUndefined();
      expect(rule.record).toMatch(
        /^([a-z_]+)?:jouleflow_([a-z0-9_]+_)?(joules|joules_total|watts|grams|seconds|share|pue|nodes):[a-z0-9_]+$/,
      );
    }
  });

  test('every :increase<W> and :count<W> window equals its group interval (the windows tile the range)', () => {
    for (const { group, rule } of records) {
      const m = /:(?:increase|count)(\d+[smh])$/.exec(rule.record ?? '');
      if (!m) continue;
      expect({ record: rule.record, window: m[1], interval: group.interval }).toEqual({
        record: rule.record,
        window: m[1],
        interval: m[1],
      });
      const windows = [...rule.expr.matchAll(/\[(\d+[smh])\]/g)].map((x) => durationSeconds(x[1]));
      expect({ record: rule.record, windows }).toEqual({ record: rule.record, windows: windows.map(() => durationSeconds(m[1])) });
    }
  });

  test('every rule has a promtool case', () => {
    const text = JSON.stringify(readYaml<unknown>(TEST_FILE));
    for (const { rule } of records)
      expect({ record: rule.record, tested: text.includes(`${rule.record}`) }).toEqual({ record: rule.record, tested: true });
  });

  test('the unit tests pass on the rules as they are', () => {
    const r = promtoolTest(toYaml(fleet));
    expect({ status: r.status, out: r.out }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  });

  test.each([...new Set(records.map(({ rule }) => rule.record as string))])(
    '%s: a mutant with its value doubled fails the unit tests',
    (name) => {
      const r = promtoolTest(mutant(name, (e) => `2 * (${e})`));
      expect(r.status).not.toBe(0);
      expect(r.out).toContain(name);
    },
  );

  test.each([...new Set(records.filter(({ rule }) => /\bby \(/.test(rule.expr)).map(({ rule }) => rule.record as string))])(
    '%s: a mutant that drops its grouping fails the unit tests',
    (name) => {
      // quantile by (…) (φ, …) loses its grouping the same way: the by clause goes
      const r = promtoolTest(mutant(name, (e) => e.replace(/^(\s*)(sum|max|min|count|quantile) by \([^)]*\)/, '$1$2')));
      expect(r.status).not.toBe(0);
    },
  );
});
