import { existsSync, readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { REPO } from '../prometheus/lib';

/** Reading the provisioned dashboards and pulling every PromQL expression out of them. */

export const DASHBOARD_DIR = join(REPO, 'dashboards');
export const PROVISIONING_DIR = join(DASHBOARD_DIR, 'provisioning');
export const PLUGIN_JSON = join(REPO, 'grafana-plugin/src/plugin.json');
/** The panel plugin's id when grafana-plugin/src/plugin.json is not there. */
export const PLUGIN_ID_FALLBACK = 'jouleflow-energysplit-panel';

export interface DsRef {
  type?: string;
  uid?: string;
}
export interface Target {
  refId: string;
  expr?: string;
  datasource?: DsRef;
  instant?: boolean;
  range?: boolean;
  format?: string;
  legendFormat?: string;
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DsRef;
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { x: number; y: number; w: number; h: number };
  fieldConfig?: { defaults?: { unit?: string; min?: number; max?: number }; overrides?: unknown[] };
  options?: Record<string, unknown>;
  transformations?: Array<{ id: string; options: unknown }>;
}
export interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  definition?: string;
  datasource?: DsRef;
  current?: { text?: unknown; value?: unknown };
  allValue?: string;
  includeAll?: boolean;
}
export interface Annotation {
  name: string;
  datasource?: DsRef;
  expr?: string;
  builtIn?: number;
}
export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: Annotation[] };
}

export interface LoadedDashboard {
  file: string;
  dashboard: Dashboard;
}

export function dashboardFiles(): string[] {
  return readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(DASHBOARD_DIR, f));
}

export function loadDashboards(): LoadedDashboard[] {
  return dashboardFiles().map((file) => ({ file, dashboard: JSON.parse(readFileSync(file, 'utf8')) as Dashboard }));
}

/** Panels, with the panels nested in collapsed rows. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export function pluginId(): string {
  if (!existsSync(PLUGIN_JSON)) return PLUGIN_ID_FALLBACK;
  return (JSON.parse(readFileSync(PLUGIN_JSON, 'utf8')) as { id: string }).id;
}

export type ExprSource = 'panel' | 'annotation' | 'variable';
export interface FoundExpr {
  dashboard: string;
  where: string;
  source: ExprSource;
  expr: string;
  /** The unit of the panel that shows it, for sanity ranges. */
  unit?: string;
}

/** `label_values(selector, label)` → the selector (what Prometheus must find series for). */
export function labelValuesSelector(q: string): { selector: string; label: string } | undefined {
  const m = /^\s*label_values\(\s*(.*)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*$/s.exec(q);
  return m ? { selector: m[1], label: m[2] } : undefined;
}

export function dashboardExpressions(dashboards = loadDashboards()): FoundExpr[] {
  const out: FoundExpr[] = [];
  for (const { dashboard: d } of dashboards) {
    for (const p of allPanels(d)) {
      for (const t of p.targets ?? []) {
        if (t.expr) {
          out.push({
            dashboard: d.uid,
            where: `panel "${p.title}" ${t.refId}`,
            source: 'panel',
            expr: t.expr,
            unit: p.fieldConfig?.defaults?.unit,
          });
        }
      }
    }
    for (const a of d.annotations.list) {
      if (a.expr) out.push({ dashboard: d.uid, where: `annotation "${a.name}"`, source: 'annotation', expr: a.expr });
    }
    for (const v of d.templating.list) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      if (v.type === 'query' && q) out.push({ dashboard: d.uid, where: `variable $${v.name}`, source: 'variable', expr: q });
    }
  }
  return out;
}

/** Template variables as the integration test substitutes them (all nodes, all jobs). */
export const TEMPLATE_VALUES: Record<string, string> = {
  __range: '1m',
  __rate_interval: '4s',
  __interval: '1s',
  node: '.*',
  job_id: '.+',
  unit: '.+',
};

export function substitute(expr: string, values = TEMPLATE_VALUES): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (m, name: string) => {
    if (!(name in values)) throw new Error(`no value for template variable ${m} in: ${expr}`);
    return values[name];
  });
}
