import { join } from 'path';
import { ALERTS_DIR, durationSeconds, type PromRuleFile } from '../prometheus/lib';

/** Shared by the fleet suites (rules, remote storage, cardinality). */

export const FLEET_RULES_FILE = join(ALERTS_DIR, 'jouleflow-fleet.rules.yml');

/**
 * A copy of a rule file for a test that cannot wait minutes: every range window and every group
 * interval divided by `factor` (whole seconds, at least 1 s), so `:increase1m` windows still equal
 * their group's interval and a `rate2m` keeps its 2 windows per interval. Record names stay, so
 * the dashboards read them unchanged; `for:` durations stay too.
 */
export function fasterRules(rules: PromRuleFile, factor: number): PromRuleFile {
  const scale = (d: string) => `${Math.max(1, Math.round(durationSeconds(d) / factor))}s`;
  const copy = JSON.parse(JSON.stringify(rules)) as PromRuleFile;
  for (const g of copy.groups) {
    if (g.interval) g.interval = scale(g.interval);
    for (const r of g.rules) r.expr = r.expr.replace(/\[(\d+[smhd])\]/g, (_, d: string) => `[${scale(d)}]`);
  }
  return copy;
}
