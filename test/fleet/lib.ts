import { join } from 'path';
import { ALERTS_DIR, type PromRuleFile } from '../prometheus/lib';

/** Shared by the fleet suites (rules, remote storage, cardinality). */

export const FLEET_RULES_FILE = join(ALERTS_DIR, 'jouleflow-fleet.rules.yml');

/**
 * A copy of a rule file for a test that cannot wait minutes: every group with an `interval` runs
 * at `interval` instead, and the windows of its `:increase<W>`/`:count<W>` rules (which must
 * equal the group interval for sum_over_time to be the energy in a range) shrink with it. Record
 * names stay, so the dashboards read them unchanged.
 */
export function fasterRules(rules: PromRuleFile, interval: string): PromRuleFile {
  const copy = JSON.parse(JSON.stringify(rules)) as PromRuleFile;
  for (const g of copy.groups) {
    if (!g.interval) continue;
    const old = g.interval;
    g.interval = interval;
    for (const r of g.rules) {
      if (r.record && new RegExp(`:(increase|count)${old}$`).test(r.record)) r.expr = r.expr.split(`[${old}]`).join(`[${interval}]`);
    }
  }
  return copy;
}
