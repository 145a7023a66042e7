import { readdirSync } from 'fs';
import { join } from 'path';
import { readYaml } from '../prometheus/lib';
import {
  allPanels,
  type Dashboard,
  dashboardExpressions,
  type DsRef,
  loadDashboards,
  type Panel,
  pluginId,
  PROVISIONING_DIR,
  substitute,
} from './lib';

/**
 * Static checks of everything Grafana provisions from dashboards/: each dashboard parses with
 * stable unique uids and a current schemaVersion, every datasource reference resolves to a
 * provisioned datasource, every panel type is a core panel or our plugin, units are set, the
 * node and job variables are used instead of hard-coded instances, and `job` is never used for
 * training jobs. (The Grafana alert rule file is checked in test/prometheus/rules.test.ts.)
 */

interface DatasourceFile {
  apiVersion: number;
  datasources: Array<{ name: string; uid: string; type: string; url: string; isDefault?: boolean }>;
}
interface DashboardProviderFile {
  apiVersion: number;
  providers: Array<{ name: string; type: string; folder?: string; folderUid?: string; options: { path: string } }>;
}

const CORE_PANELS = new Set([
  'row',
  'timeseries',
  'stat',
  'gauge',
  'bargauge',
  'table',
  'state-timeline',
  'status-history',
  'piechart',
  'text',
  'barchart',
  'heatmap',
  'histogram',
  'logs',
  'news',
  'nodeGraph',
  'geomap',
  'canvas',
  'dashlist',
  'alertlist',
  'annolist',
  'xychart',
  'trend',
  'flamegraph',
  'traces',
  'candlestick',
  'datagrid',
]);
const GRAFANA_BUILTIN_DS = new Set(['-- Grafana --', 'grafana', '-- Dashboard --', '-- Mixed --']);

const dashboards = loadDashboards();
const datasourceFiles = readdirSync(join(PROVISIONING_DIR, 'datasources')).filter((f) => /\.ya?ml$/.test(f));
const datasources = datasourceFiles.flatMap((f) => readYaml<DatasourceFile>(join(PROVISIONING_DIR, 'datasources', f)).datasources);
const dsByUid = new Map(datasources.map((d) => [d.uid, d]));

/** Resolves `${datasource}` / `$datasource` to the variable's default (its current value). */
function resolveDs(d: Dashboard, ref: DsRef | undefined): { uid?: string; type?: string } {
  if (!ref) return {};
  const m = /^\$\{?(\w+)\}?$/.exec(ref.uid ?? '');
  if (!m) return ref;
  const v = d.templating.list.find((x) => x.name === m[1]);
  if (!v || v.type !== 'datasource') throw new Error(`${d.uid}: datasource variable ${ref.uid} is not defined`);
  return { uid: String(v.current?.value), type: ref.type };
}

describe.each(dashboards.map((l) => [l.dashboard.uid, l] as const))('dashboard %s', (_uid, { file, dashboard: d }) => {
  const panels = allPanels(d);
  const visual = panels.filter((p) => p.type !== 'row' && p.type !== 'text');

  test('has a stable uid, a title, schemaVersion ≥ 39 and unique panel ids', () => {
    expect(d.uid).toMatch(/^jouleflow-[a-z-]+$/);
    expect(d.title).toMatch(/^jouleflow \/ /);
    expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(file).toMatch(/\.json$/);
  });

  test('every datasource reference resolves to a provisioned datasource of the right type', () => {
    const refs: Array<{ where: string; ref: DsRef | undefined }> = [];
    for (const p of panels) {
      if (p.type === 'row') continue;
      refs.push({ where: `panel ${p.title}`, ref: p.datasource });
      for (const t of p.targets ?? []) refs.push({ where: `panel ${p.title} ${t.refId}`, ref: t.datasource ?? p.datasource });
    }
    for (const a of d.annotations.list) refs.push({ where: `annotation ${a.name}`, ref: a.datasource });
    for (const v of d.templating.list.filter((x) => x.type === 'query')) refs.push({ where: `variable ${v.name}`, ref: v.datasource });
    expect(refs.length).toBeGreaterThan(0);
    for (const { where, ref } of refs) {
      const r = resolveDs(d, ref);
      if (r.uid && GRAFANA_BUILTIN_DS.has(r.uid)) continue;
      const ds = r.uid ? dsByUid.get(r.uid) : undefined;
      expect({ where, uid: r.uid, provisioned: !!ds, typeMatches: ds?.type === r.type }).toEqual({
        where,
        uid: r.uid,
        provisioned: true,
        typeMatches: true,
      });
    }
  });

  test('the datasource variable defaults to the provisioned Prometheus uid', () => {
    const v = d.templating.list.find((x) => x.name === 'datasource');
    expect(v?.type).toBe('datasource');
    expect(v?.query).toBe('prometheus');
    expect(dsByUid.get(String(v?.current?.value))?.type).toBe('prometheus');
  });

  test('every panel is a core panel or the jouleflow panel plugin', () => {
    for (const p of panels)
      expect({ panel: p.title, type: p.type, known: CORE_PANELS.has(p.type) || p.type === pluginId() }).toEqual(
        expect.objectContaining({ known: true }),
      );
  });

  test('units are set: energy in joule or kWh, power in watt, shares in percentunit', () => {
    const energyUnits = ['joule', 'kwatth', 'watth', 'mwatth'];
    for (const p of visual) {
      const unit = p.fieldConfig?.defaults?.unit;
      if (p.type === 'state-timeline') continue; // value mappings up/down
      expect({ panel: p.title, unit }).toEqual({ panel: p.title, unit: expect.any(String) });
      if (p.type === 'table') continue; // per-column units in overrides
      const exprs = (p.targets ?? []).map((t) => t.expr ?? '');
      const energy = exprs.filter((e) => /_joules_total/.test(e));
      if (energy.length === 0 || energy.length !== exprs.length) continue;
      const all = (re: RegExp) => energy.every((e) => re.test(e));
      let expected: string[] = energyUnits;
      if (all(/\/ 1000$/)) expected = ['masskg'];
      else if (all(/\/\s*sum by \(instance\)/)) expected = ['percentunit'];
      else if (all(/\/ 3\.6e6/)) expected = ['kwatth'];
      else if (all(/\brate\(/)) expected = ['watt'];
      if (/PUE/.test(p.title)) continue;
      expect({ panel: p.title, unit }).toEqual({ panel: p.title, unit: expect.stringMatching(new RegExp(`^(${expected.join('|')})$`)) });
    }
  });

  test('no hard-coded instances: every jouleflow selector is filtered by $node', () => {
    for (const e of dashboardExpressions([{ file, dashboard: d }])) {
      expect(e.expr).not.toMatch(/instance\s*=~?\s*"(?!\$node")/);
      if (e.source === 'variable' && /^label_values\(jouleflow_build_info, instance\)$/.test(e.expr)) continue;
      // Raw series and recorded series kept per node (level `instance`); the recorded job and fleet
      // totals (jouleflow-fleet.rules.yml: job_id…:, :…) have no instance left to filter. A job's
      // work is a fleet total like its energy (the per-unit panel divides one by the other, and
      // the unit variable lists the job's units): never filtered by $node.
      for (const m of e.expr.matchAll(/(?<![\w:])((?:instance[a-z_]*:)?jouleflow_[a-z_]+(?::[a-z0-9_]+)?)(\{[^}]*\})?/g)) {
        expect({ where: e.where, selector: m[0], node: /instance=~"\$node"/.test(m[2] ?? '') }).toEqual({
          where: e.where,
          selector: m[0],
          node: m[1] !== 'jouleflow_job_work_total',
        });
      }
    }
  });

  test('training jobs are job_id, never the label job', () => {
    for (const e of dashboardExpressions([{ file, dashboard: d }])) {
      expect(e.expr).not.toMatch(/\bjob\s*(=|!=|=~|!~)\s*"/);
      expect(e.expr).not.toMatch(/\b(by|on|without|group_left|group_right)\s*\(([^)]*,\s*)?job\s*(,|\))/);
    }
    for (const p of panels) {
      for (const t of p.targets ?? []) expect(t.legendFormat ?? '').not.toMatch(/\{\{\s*job\s*\}\}/);
    }
  });

  test('every template variable used is defined (or a Grafana global)', () => {
    const defined = new Set([...d.templating.list.map((v) => v.name), '__range', '__rate_interval', '__interval']);
    for (const e of dashboardExpressions([{ file, dashboard: d }])) {
      for (const m of e.expr.matchAll(/\$\{?(\w+)\}?/g))
        expect({ where: e.where, variable: m[1], defined: defined.has(m[1]) }).toEqual({ where: e.where, variable: m[1], defined: true });
      expect(() => substitute(e.expr)).not.toThrow();
    }
  });

  test('panels do not overlap on the grid and fit 24 columns', () => {
    const cells = new Map<string, string>();
    for (const p of d.panels) {
      const g = p.gridPos as NonNullable<Panel['gridPos']>;
      expect(g.x + g.w).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const k = `${x},${y}`;
          expect({ cell: k, overlaps: cells.get(k) ?? null, panel: p.title }).toEqual({ cell: k, overlaps: null, panel: p.title });
          cells.set(k, p.title);
        }
      }
    }
  });

  test('the demo mode is shown by an annotation on jouleflow_build_info{mode="demo"}', () => {
    const a = d.annotations.list.find((x) => x.name === 'Demo mode');
    expect(a?.expr).toMatch(/jouleflow_build_info\{mode="demo"/);
  });
});

describe('the dashboard set', () => {
  test('three dashboards with unique uids and titles', () => {
    expect(dashboards.map((l) => l.dashboard.uid).sort()).toEqual(['jouleflow-fleet', 'jouleflow-jobs', 'jouleflow-node']);
    expect(new Set(dashboards.map((l) => l.dashboard.title)).size).toBe(dashboards.length);
  });

  const byUid = (uid: string) => (dashboards.find((l) => l.dashboard.uid === uid) as { dashboard: Dashboard }).dashboard;

  test('Training jobs: the energy split panel queries increase over $__range by job_id and component, instant table, with job_name', () => {
    const d = byUid('jouleflow-jobs');
    const p = allPanels(d).find((x) => x.type === pluginId()) as Panel;
    expect(p).toBeDefined();
    const a = p.targets?.find((t) => t.refId === 'A');
    // O(jobs) recorded series (dashboards/alerts/jouleflow-fleet.rules.yml), not nodes × jobs raw ones
    expect(a?.expr).toMatch(
      /sum by \(job_id, component\) \(sum_over_time\(job_id_component:jouleflow_job_energy_joules:increase1m\[\$__range\]\)\)/,
    );
    expect(a?.expr).toMatch(/group_left \(job_name\)/);
    expect(a?.expr).toMatch(/job_id_job_name:jouleflow_job_info_seen_timestamp_seconds:max/);
    expect(a).toEqual(expect.objectContaining({ format: 'table', instant: true, range: false }));
    expect(p.options).toEqual(
      expect.objectContaining({ groupByLabel: 'job_id', splitLabel: 'component', nameLabel: 'job_name', inputUnit: 'joule' }),
    );
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'node', 'job_id', 'unit']); // unit: the efficiency row repeats per unit of work
    // the table: duration, kWh per component, CO₂
    const table = allPanels(d).find((x) => x.type === 'table') as Panel;
    const exprs = (table.targets ?? []).map((t) => t.expr).join('\n');
    for (const c of ['compute', 'transmit', 'store', 'cooling']) expect(exprs).toContain(`component="${c}"`);
    expect(exprs).toContain('job_id:jouleflow_job_start_time_seconds:min');
    expect(exprs).toContain('job_id:jouleflow_job_co2_grams:increase1m');
  });

  test('Fleet: jobs are summed by job_id across instances; idle share per node uses job_id="unattributed"', () => {
    const exprs = dashboardExpressions([{ file: '', dashboard: byUid('jouleflow-fleet') }]).map((e) => e.expr);
    expect(exprs.some((e) => /sum by \(job_id\) \(sum_over_time\(job_id_component:jouleflow_job_energy_joules:increase1m/.test(e))).toBe(
      true,
    );
    expect(exprs.some((e) => /topk\(10,/.test(e))).toBe(true);
    expect(exprs.some((e) => /instance:jouleflow_job_unattributed_energy_joules:increase1m/.test(e))).toBe(true);
  });

  test('Node energy: power, counters, PUE, source health and carbon intensity are all shown', () => {
    const exprs = dashboardExpressions([{ file: '', dashboard: byUid('jouleflow-node') }])
      .map((e) => e.expr)
      .join('\n');
    for (const m of [
      'jouleflow_node_energy_joules_total',
      'jouleflow_node_power_watts',
      'jouleflow_pue_ratio',
      'jouleflow_source_up',
      'jouleflow_source_errors_total',
      'jouleflow_grid_carbon_intensity_grams_per_kwh',
      'jouleflow_sample_duration_seconds_bucket',
    ]) {
      expect(exprs).toContain(m);
    }
  });
});

describe('provisioning files', () => {
  test('datasources: unique uids, the Prometheus one is the default', () => {
    expect(new Set(datasources.map((d) => d.uid)).size).toBe(datasources.length);
    const prom = datasources.filter((d) => d.type === 'prometheus');
    expect(prom.map((d) => d.uid)).toEqual(['jouleflow-prometheus']);
    expect(prom[0].isDefault).toBe(true);
  });

  test('dashboard provider reads a folder of JSON files', () => {
    const p = readYaml<DashboardProviderFile>(join(PROVISIONING_DIR, 'dashboards', 'jouleflow.yml'));
    expect(p.apiVersion).toBe(1);
    expect(p.providers).toHaveLength(1);
    expect(p.providers[0].type).toBe('file');
    expect(p.providers[0].options.path).toMatch(/^\/var\/lib\/grafana\/dashboards\//);
  });

  test('dashboards and Grafana alert rules land in one folder (found by title, no folderUid)', () => {
    // Grafana provisions alert rules before dashboards and creates the rules' folder by title with a
    // random uid; a provider with a folderUid then creates a second folder with the same title
    // (grafana/grafana#125079). Without folderUid the provider finds the rules' folder by its title.
    const p = readYaml<DashboardProviderFile>(join(PROVISIONING_DIR, 'dashboards', 'jouleflow.yml'));
    const alerts = readYaml<{ groups: Array<{ folder: string }> }>(join(PROVISIONING_DIR, 'alerting', 'jouleflow-alerts.yml'));
    for (const prov of p.providers) {
      expect({ provider: prov.name, folderUid: prov.folderUid }).toEqual({ provider: prov.name, folderUid: undefined });
      for (const g of alerts.groups) expect(g.folder).toBe(prov.folder);
    }
  });
});
