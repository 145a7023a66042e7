import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse } from 'yaml';
import { CHART, helm, render, ROOT, type K8sDoc } from './helm';

/**
 * deploy/helm/jouleflow, offline: `helm lint --strict` and `helm template` for the default, GPU
 * and prometheus-operator values; every rendered core object validated against the official
 * OpenAPI schema (kubernetes-models), the operator's objects checked field by field and the rules
 * by promtool; the values schema rejects bad values; deploy/kubernetes/jouleflow.yaml is the
 * chart rendered with the defaults.
 */

jest.setTimeout(120_000);

const VALUES = { default: [], gpu: [path.join(CHART, 'ci/gpu-values.yaml')], operator: [path.join(CHART, 'ci/operator-values.yaml')] };

/** The kubernetes-models class of a core object (one module per group/version/Kind). */
function validator(doc: K8sDoc): { validate(): void } {
  const [group, version] = doc.apiVersion.includes('/') ? doc.apiVersion.split('/') : ['', doc.apiVersion];
  const mod = group ? `kubernetes-models/${group}/${version}/${doc.kind}` : `kubernetes-models/${version}/${doc.kind}`;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- one module per kind, chosen at run time
  const Model = (require(mod) as Record<string, new (d: unknown) => { validate(): void }>)[doc.kind];
  return new Model(doc);
}

function byKind(docs: K8sDoc[], kind: string): K8sDoc[] {
  return docs.filter((d) => d.kind === kind);
}

interface Container {
  args: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: Record<string, Record<string, string>> }>;
  securityContext: { capabilities: { add: string[]; drop: string[] }; readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  hostPID: boolean;
  runtimeClassName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: unknown[];
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}
const podSpec = (ds: K8sDoc) => (ds.spec as { template: { spec: PodSpec } }).template.spec;

describe.each(Object.entries(VALUES))('helm chart with %s values', (_name, files) => {
  it('passes helm lint --strict', () => {
    const r = helm(['lint', '--strict', CHART, ...files.flatMap((f) => ['-f', f])]);
    expect(r.stdout).toContain('0 chart(s) failed');
    expect(r.status).toBe(0);
  });

  it('renders objects that validate against the Kubernetes schema', () => {
    const { docs } = render('jouleflow', files);
    const core = docs.filter((d) => !d.apiVersion.startsWith('monitoring.coreos.com/'));
    expect(core.length).toBeGreaterThanOrEqual(7);
    for (const d of core) expect(() => validator(d).validate()).not.toThrow();
    for (const d of docs) expect(d.metadata.labels?.['app.kubernetes.io/name']).toBe('jouleflow');
  });
});

describe('helm chart contents', () => {
  const { docs } = render('jouleflow');

  it('a DaemonSet with hostPID, read-only /sys and /proc, and only DAC_READ_SEARCH and SYS_PTRACE', () => {
    const [ds] = byKind(docs, 'DaemonSet');
    const spec = podSpec(ds);
    expect(spec.hostPID).toBe(true);
    const [c] = spec.containers;
    expect(c.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['DAC_READ_SEARCH', 'SYS_PTRACE'] });
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    const mount = (p: string) => c.volumeMounts.find((m) => m.mountPath === p);
    expect(mount('/host/sys')?.readOnly).toBe(true);
    expect(mount('/host/proc')?.readOnly).toBe(true);
    expect(spec.volumes.find((v) => v.name === mount('/host/proc')?.name)?.hostPath?.path).toBe('/proc');
    expect(c.args).toEqual(expect.arrayContaining(['serve', '--path.sysfs=/host/sys', '--path.procfs=/host/proc']));
    expect(c.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
  });

  it('RBAC: list pods, nothing else', () => {
    const [role] = byKind(docs, 'ClusterRole');
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }]);
    const [binding] = byKind(docs, 'ClusterRoleBinding');
    const [sa] = byKind(docs, 'ServiceAccount');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'monitoring' }]);
  });

  it('one ConfigMap per dashboard, labelled for the Grafana sidecar, holding the dashboard unchanged', () => {
    const maps = byKind(docs, 'ConfigMap');
    const dashboards = fs.readdirSync(path.join(ROOT, 'dashboards')).filter((f) => f.endsWith('.json'));
    expect(maps).toHaveLength(dashboards.length);
    for (const f of dashboards) {
      const cm = maps.find((m) => (m.data as Record<string, string>)[f] !== undefined);
      expect(cm?.metadata.labels?.grafana_dashboard).toBe('1');
      expect(JSON.parse((cm!.data as Record<string, string>)[f])).toEqual(
        JSON.parse(fs.readFileSync(path.join(ROOT, 'dashboards', f), 'utf8')),
      );
    }
  });

  it('no ServiceMonitor or PrometheusRule by default', () => {
    expect(docs.filter((d) => d.apiVersion.startsWith('monitoring.coreos.com/'))).toEqual([]);
  });

  it('GPU values: runtime class, tolerations, node selector, token from a Secret, selected pod labels', () => {
    const [ds] = byKind(render('jouleflow', VALUES.gpu).docs, 'DaemonSet');
    const spec = podSpec(ds);
    expect(spec.runtimeClassName).toBe('nvidia');
    expect(spec.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(spec.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    const env = spec.containers[0].env ?? [];
    expect(env.find((e) => e.name === 'JOULEFLOW_JOBS_TOKEN')?.valueFrom).toEqual({
      secretKeyRef: { name: 'jouleflow-jobs-token', key: 'token' },
    });
    expect(env.find((e) => e.name === 'JOULEFLOW_POD_LABELS')?.value).toBe('app.kubernetes.io/name,team');
  });

  it('operator values: a ServiceMonitor on the metrics port and a PrometheusRule with the rules file that promtool accepts', () => {
    const rendered = render('jouleflow', VALUES.operator).docs;
    const [sm] = byKind(rendered, 'ServiceMonitor');
    const [svc] = byKind(rendered, 'Service');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    const smSpec = sm.spec as { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> };
    expect((svc.spec as { selector: Record<string, string> }).selector).toEqual(smSpec.selector.matchLabels);
    expect(smSpec.endpoints[0].port).toBe('metrics');
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    const [rule] = byKind(rendered, 'PrometheusRule');
    const rulesFile = parse(fs.readFileSync(path.join(ROOT, 'dashboards/alerts/jouleflow.rules.yml'), 'utf8')) as unknown;
    expect(rule.spec).toEqual(rulesFile);
    const promtool = spawnSync('promtool', ['--version']);
    if (promtool.status === 0) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-rules-'));
      const file = path.join(dir, 'rules.json');
      fs.writeFileSync(file, JSON.stringify(rule.spec));
      const check = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(check.stdout + check.stderr).toMatch(/SUCCESS/);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the values schema rejects a bad value, naming it', () => {
    const r = helm(['template', 'jouleflow', CHART, '--set', 'port=abc']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/\/port.*integer/);
  });

  it('deploy/kubernetes/jouleflow.yaml is the chart rendered with the defaults (regenerate: deploy/kubernetes/render.sh)', () => {
    const committed = fs.readFileSync(path.join(ROOT, 'deploy/kubernetes/jouleflow.yaml'), 'utf8');
    const body = committed.slice(committed.indexOf('---'));
    expect(body).toBe(render('jouleflow').text);
  });
});
