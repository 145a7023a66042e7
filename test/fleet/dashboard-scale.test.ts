import { allPanels, loadDashboards } from '../dashboards/lib';

/**
 * What keeps the fleet and jobs dashboards ≤ 1 s at 1 000 nodes (README "Fleet benchmark"): no
 * panel reads a series per node over the whole range, and a panel that reads one sample per node
 * returns a bounded answer. Per-node series are the raw ones and the recorded ones whose level
 * keeps `instance`; a graph reads fleet- or job-level recorded series only (the spread across
 * nodes is recorded as quantiles), a table or stat of per-node series is an aggregation without
 * `instance` or a topk/bottomk of at most 10. The node dashboard reads one node and is not held
 * to this. Checked statically on the JSON; the timings themselves belong to `npm run bench:fleet`.
 */

const FLEET_SCALE = ['jouleflow-fleet', 'jouleflow-jobs'];
const MAX_K = 10;

/** Series names an expression reads that hold one series per node. */
function perNodeSeries(expr: string): string[] {
  return [...expr.matchAll(/(?<![\w:])([\w:]*jouleflow[\w:]*)/g)]
    .map((m) => m[1])
    .filter((name) => !name.includes(':') || name.split(':')[0].split('_').includes('instance'));
}

/** Why a target does not scale to a fleet, or undefined when it does. */
function fleetProblem(expr: string, range: boolean): string | undefined {
  const perNode = perNodeSeries(expr);
  if (perNode.length === 0) return undefined;
  if (range) return `graphs per-node series ${perNode.join(', ')}: one line per node`;
  const outer = expr.trim().replace(/^label_replace\(\s*/, '');
  const k = /^(?:topk|bottomk)\(\s*(\d+)\s*,/.exec(outer);
  if (k) return Number(k[1]) <= MAX_K ? undefined : `topk/bottomk of ${k[1]} nodes`;
  const agg = /^(?:sum|avg|count|min|max|group|quantile)\s*(?:by\s*\(([^)]*)\))?\s*\(/.exec(outer);
  if (agg && !(agg[1] ?? '').split(',').some((l) => l.trim() === 'instance')) return undefined;
  return `one answer per node from ${perNode.join(', ')}`;
}

describe('fleet and jobs dashboards read bounded series at any node count', () => {
  const targets = loadDashboards()
    .filter((l) => FLEET_SCALE.includes(l.dashboard.uid))
    .flatMap((l) =>
      allPanels(l.dashboard).flatMap((p) =>
        (p.targets ?? [])
          .filter((t) => t.expr)
          .map((t) => ({ where: `${l.dashboard.uid}: ${p.title} ${t.refId}`, expr: t.expr as string, range: t.range === true })),
      ),
    );

  test('both dashboards have range and instant targets to check', () => {
    expect(targets.filter((t) => t.range).length).toBeGreaterThan(5);
    expect(targets.filter((t) => !t.range).length).toBeGreaterThan(10);
  });

  test('no graph reads a series per node; per-node tables and stats are aggregated or top 10', () => {
    const problems = targets.map((t) => ({ where: t.where, problem: fleetProblem(t.expr, t.range) })).filter((p) => p.problem);
    expect(problems).toEqual([]);
  });

  // the panels that took 2–5 s at 1 000 nodes before they were replaced; the check must catch them
  test.each([
    ['the old fleet Power per node', 'instance:jouleflow_node_power_watts:rate2m{instance=~"$node"}', true],
    ['the old fleet Idle share over time', 'instance:jouleflow_idle_share:ratio_rate2m{instance=~"$node"}', true],
    ['the old jobs Power per node', 'job_id_instance:jouleflow_job_power_watts:rate2m{instance=~"$node", job_id=~"$job_id"}', true],
    [
      'the old jobs Energy per $unit',
      'sum by (job_id, component) (increase(jouleflow_job_energy_joules_total{instance=~"$node", job_id=~"$job_id"}[$__rate_interval]))',
      true,
    ],
    [
      'the old fleet Energy per node (1 000 bars)',
      'sum_over_time(instance:jouleflow_node_energy_joules:increase1m{instance=~"$node"}[$__range])',
      false,
    ],
    ['a top 100 of nodes', 'topk(100, instance:jouleflow_node_power_watts:rate2m{instance=~"$node"})', false],
    ['a sum by instance', 'sum by (instance) (rate(jouleflow_node_energy_joules_total{instance=~"$node"}[5m]))', false],
  ])('flagged: %s', (_, expr, range) => {
    expect(fleetProblem(expr, range)).toEqual(expect.any(String));
  });
});
