import { spawnSync } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import { join, relative } from 'path';
import { parse as parseYaml } from 'yaml';
import { PROMETHEUS_CONFIG, readYaml, REPO, requireBinary } from '../prometheus/lib';
import { pluginId, PROVISIONING_DIR } from './lib';

/**
 * docker-compose.yml, validated offline (no Docker engine): `docker-compose config -q` for every
 * profile, then the resolved configuration cross-checked against the files it mounts, the
 * Prometheus and Alertmanager configs, the Grafana provisioning and the Dockerfile.
 */

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: Array<string | { type?: string; source: string; target: string; read_only?: boolean }>;
  profiles?: string[];
  runtime?: string;
  pid?: string;
  ports?: unknown[];
  user?: string;
  cap_add?: string[];
  cap_drop?: string[];
}
interface Compose {
  services: Record<string, Service>;
}
interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

function compose(args: string[]): { status: number | null; out: string; stdout: string } {
  const r = spawnSync('docker-compose', ['-f', join(REPO, 'docker-compose.yml'), ...args], {
    encoding: 'utf8',
    cwd: REPO,
    timeout: 30_000,
    env: { ...process.env, JOULEFLOW_JOBS_TOKEN: '', GRAFANA_ADMIN_PASSWORD: '' },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

function mounts(s: Service): Mount[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, readOnly: !!v.read_only };
    const [source, target, mode] = v.split(':');
    return { source, target, readOnly: mode === 'ro' };
  });
}

/** Maps a path inside a container back to the repo through the service's bind mounts. */
function hostPath(s: Service, containerPath: string): string | undefined {
  for (const m of mounts(s)) {
    if (containerPath === m.target || containerPath.startsWith(`${m.target}/`)) return join(m.source, containerPath.slice(m.target.length));
  }
  return undefined;
}

let resolved: Compose;

beforeAll(() => {
  requireBinary('docker-compose', 'docker-compose');
  const r = compose(['--profile', 'gpu', '--profile', 'demo', 'config']);
  if (r.status !== 0) throw new Error(r.out);
  resolved = parseYaml(r.stdout) as Compose;
});

describe('docker-compose.yml', () => {
  test.each([[[]], [['--profile', 'gpu']], [['--profile', 'demo']], [['--profile', 'gpu', '--profile', 'demo']]])(
    'docker-compose %j config -q accepts it',
    (profiles) => {
      const r = compose([...(profiles as string[]), 'config', '-q']);
      expect(r.out).toBe('');
      expect(r.status).toBe(0);
    },
  );

  test('services: exporter (plain, gpu, demo), prometheus, alertmanager, grafana; profiles as documented', () => {
    expect(Object.keys(resolved.services).sort()).toEqual([
      'alertmanager',
      'grafana',
      'jouleflow',
      'jouleflow-demo',
      'jouleflow-gpu',
      'prometheus',
    ]);
    expect(resolved.services.jouleflow.profiles).toBeUndefined();
    expect(resolved.services['jouleflow-gpu'].profiles).toEqual(['gpu']);
    expect(resolved.services['jouleflow-demo'].profiles).toEqual(['demo']);
    expect(resolved.services['jouleflow-gpu'].runtime).toBe('nvidia');
    expect(resolved.services['jouleflow-gpu'].environment?.NVIDIA_DRIVER_CAPABILITIES).toMatch(/utility/);
  });

  test('the exporter is built from the repo Dockerfile (node:20) and reads /sys and /proc read-only via --path.*', () => {
    for (const name of ['jouleflow', 'jouleflow-gpu']) {
      const s = resolved.services[name];
      expect(relative(REPO, s.build?.context ?? '')).toBe('');
      expect(s.build?.dockerfile ?? 'Dockerfile').toBe('Dockerfile');
      const m = mounts(s);
      expect(m).toEqual(
        expect.arrayContaining([
          { source: '/sys', target: '/host/sys', readOnly: true },
          { source: '/proc', target: '/host/proc', readOnly: true },
        ]),
      );
      expect(s.command).toEqual(
        expect.arrayContaining(['serve', '--path.sysfs=/host/sys', '--path.procfs=/host/proc', '--web.listen-address=:10042']),
      );
      expect(s.pid).toBe('host');
      // root with only the capabilities RAPL (DAC_READ_SEARCH) and /proc/PID/io (+ SYS_PTRACE) need
      expect({ user: s.user, drop: s.cap_drop, add: [...(s.cap_add ?? [])].sort() }).toEqual({
        user: '0:0',
        drop: ['ALL'],
        add: ['DAC_READ_SEARCH', 'SYS_PTRACE'],
      });
      // podman-compose 1.0 drops `pid: host`: the entrypoint refuses a PID namespace of its own
      expect(s.entrypoint?.[0]).toBe('sh');
      expect(s.entrypoint?.[2]).toContain('cd -P /host/proc/self');
      expect(s.entrypoint?.[2]).toContain('exec node exporter/dist/main.js');
    }
    const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:20[-\w]* AS modules$/m);
    expect(dockerfile).toMatch(/^FROM node:20[-\w]*$/m);
    // every file the Dockerfile copies from the context exists
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const src of m[1].trim().split(/\s+/)) expect({ src, exists: existsSync(join(REPO, src)) }).toEqual({ src, exists: true });
    }
  });

  test('the image builds with the npm registry as its only network: native deps compile with the node image headers', () => {
    // better-sqlite3 installs with `prebuild-install || node-gyp rebuild`: the first downloads from
    // github.com, the second fetches the Node headers from nodejs.org unless npm_config_nodedir
    // points at local ones (the official node images ship them in /usr/local/include/node).
    const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
    const stages = dockerfile.split(/^(?=FROM )/m).filter((st) => st.startsWith('FROM '));
    // a stage that installs with --ignore-scripts compiles nothing (it copies the compiled binary)
    const installing = stages.filter((st) => /^RUN .*\bnpm (ci|install)\b(?!.*--ignore-scripts)/m.test(st));
    expect(installing.length).toBeGreaterThan(0);
    for (const st of installing) {
      const from = st.split('\n')[0];
      const env = [...st.matchAll(/^ENV (.+)$/gm)].map((m) => m[1]).join(' ');
      expect({
        from,
        nodedir: /\bnpm_config_nodedir=\/usr\/local\b/.test(env),
        fromSource: /\bnpm_config_build_from_source=(better-sqlite3|true)\b/.test(env),
      }).toEqual({
        from,
        nodedir: true,
        fromSource: true,
      });
      expect(from).toMatch(/^FROM node:20[-\w]*( AS \w+)?$/);
    }
  });

  test('demo profile: same image, runs scripts/demo.mjs', () => {
    const d = resolved.services['jouleflow-demo'];
    expect(d.image).toBe(resolved.services.jouleflow.image);
    expect(d.entrypoint).toEqual(['node', 'scripts/demo.mjs']);
    expect(existsSync(join(REPO, 'scripts/demo.mjs'))).toBe(true);
    expect(d.environment?.JOULEFLOW_DEMO_LISTEN).toMatch(/:10042$/);
  });

  test('Grafana 13.2 loads the unsigned panel plugin from grafana-plugin/dist', () => {
    const g = resolved.services.grafana;
    expect(g.image).toMatch(/^grafana\/grafana(-oss)?:13\.2\.\d+$/);
    expect(g.environment?.GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS?.split(',')).toContain(pluginId());
    const plugin = mounts(g).find((m) => m.target === `/var/lib/grafana/plugins/${pluginId()}`);
    expect(relative(REPO, plugin?.source ?? '')).toBe('grafana-plugin/dist');
    // dist is a build output (npm run build -w grafana-plugin); its source must be there
    expect(existsSync(join(REPO, 'grafana-plugin/src/plugin.json'))).toBe(true);
  });

  test('Grafana provisioning: datasources, dashboards and alerting are mounted from dashboards/provisioning', () => {
    const g = resolved.services.grafana;
    for (const kind of ['datasources', 'dashboards', 'alerting']) {
      const src = hostPath(g, `/etc/grafana/provisioning/${kind}`);
      expect(src && relative(REPO, src)).toBe(`dashboards/provisioning/${kind}`);
    }
    const provider = readYaml<{ providers: Array<{ options: { path: string } }> }>(join(PROVISIONING_DIR, 'dashboards/jouleflow.yml'));
    const dir = hostPath(g, provider.providers[0].options.path);
    expect(dir && relative(REPO, dir)).toBe('dashboards');
    for (const f of ['node-energy.json', 'training-jobs.json', 'fleet.json']) expect(existsSync(join(dir as string, f))).toBe(true);
    const home = g.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH as string;
    expect(existsSync(hostPath(g, home) as string)).toBe(true);
    const ds = readYaml<{ datasources: Array<{ type: string; url: string }> }>(join(PROVISIONING_DIR, 'datasources/jouleflow.yml'));
    for (const d of ds.datasources) {
      const host = new URL(d.url).hostname;
      expect(Object.keys(resolved.services)).toContain(host);
    }
  });

  test('every bind mount source exists in the repo (grafana-plugin/dist excepted: a build output)', () => {
    for (const [name, s] of Object.entries(resolved.services)) {
      for (const m of mounts(s)) {
        if (!m.source.startsWith('/') || m.source === '/sys' || m.source === '/proc') continue; // named volumes, host paths
        const rel = relative(REPO, m.source);
        if (rel === 'grafana-plugin/dist') continue;
        expect({ service: name, source: rel, exists: existsSync(m.source) }).toEqual({ service: name, source: rel, exists: true });
        expect({ service: name, target: m.target, readOnly: m.readOnly }).toEqual({ service: name, target: m.target, readOnly: true });
      }
    }
  });

  test('Prometheus: its rule files and scrape targets resolve to this stack', () => {
    const p = resolved.services.prometheus;
    const cfgPath = hostPath(p, '/etc/prometheus/prometheus.yml') as string;
    expect(relative(REPO, cfgPath)).toBe(relative(REPO, PROMETHEUS_CONFIG));
    const cfg = readYaml<{
      rule_files: string[];
      alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> };
      scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }> }>;
    }>(PROMETHEUS_CONFIG);
    for (const f of cfg.rule_files) {
      // a glob names its directory (the site rule directory, deploy/prometheus/rules.d)
      const host = hostPath(p, f.includes('*') ? f.slice(0, f.lastIndexOf('/')) : f);
      expect({ rule: f, exists: !!host && existsSync(host) }).toEqual({ rule: f, exists: true });
    }
    expect(cfg.rule_files).toContain('/etc/prometheus/rules/jouleflow.rules.yml');
    const jf = cfg.scrape_configs.find((s) => s.job_name === 'jouleflow');
    const sd = jf?.dns_sd_configs?.[0];
    expect(sd?.port).toBe(10042);
    expect(sd?.names.sort()).toEqual(['jouleflow', 'jouleflow-demo', 'jouleflow-gpu']);
    for (const n of sd?.names ?? []) expect(Object.keys(resolved.services)).toContain(n);
    const am = cfg.alerting.alertmanagers[0].static_configs[0].targets[0];
    expect(am).toBe('alertmanager:9093');
  });

  test('promtool check config --syntax-only accepts deploy/prometheus/prometheus.yml as shipped', () => {
    requireBinary('promtool', 'prometheus');
    const r = spawnSync('promtool', ['check', 'config', '--syntax-only', PROMETHEUS_CONFIG], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  test('portable across Docker Compose v2, docker-compose 1.29 and podman-compose 1.0: no empty `${VAR:-}` default', () => {
    // podman-compose 1.0 passes `${VAR:-}` and `${VAR-}` on literally; a bare `$` not written `$$`
    // is read differently by the three as well.
    const text = readFileSync(join(REPO, 'docker-compose.yml'), 'utf8')
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n');
    expect(text.match(/\$\{\w+:?-\}/g) ?? []).toEqual([]);
    const dollars = text.replace(/\$\$/g, '').match(/\$(?!\{\w+(:?-[^}]+)?\})./g) ?? [];
    expect(dollars).toEqual([]);
    // the token is passed through from the environment, set or not
    for (const name of ['jouleflow', 'jouleflow-gpu'])
      expect(Object.keys(resolved.services[name].environment ?? {})).toContain('JOULEFLOW_JOBS_TOKEN');
  });

  test('Alertmanager: every route names a defined receiver', () => {
    interface Route {
      receiver?: string;
      routes?: Route[];
    }
    const am = readYaml<{ route: Route; receivers: Array<{ name: string }> }>(join(REPO, 'deploy/alertmanager/alertmanager.yml'));
    const names = new Set(am.receivers.map((r) => r.name));
    const walk = (r: Route): void => {
      if (r.receiver) expect(names.has(r.receiver)).toBe(true);
      (r.routes ?? []).forEach(walk);
    };
    expect(am.route.receiver).toBeTruthy();
    walk(am.route);
  });

  test('Alertmanager: inhibit rules compare labels both alerts carry (as the promtool tests show them firing)', () => {
    interface Inhibit {
      source_matchers: string[];
      target_matchers: string[];
      equal: string[];
    }
    const am = readYaml<{ inhibit_rules?: Inhibit[] }>(join(REPO, 'deploy/alertmanager/alertmanager.yml'));
    interface RuleTest {
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: Array<{ exp_labels: Record<string, unknown> }> }> }>;
    }
    const labels = new Map<string, Set<string>>();
    for (const t of readYaml<RuleTest>(join(REPO, 'dashboards/alerts/jouleflow.rules.test.yml')).tests)
      for (const a of t.alert_rule_test ?? [])
        for (const e of a.exp_alerts)
          for (const k of Object.keys(e.exp_labels)) labels.set(a.alertname, (labels.get(a.alertname) ?? new Set()).add(k));
    const alertname = (matchers: string[]) => /alertname="([^"]+)"/.exec(matchers.join(','))?.[1] ?? '';
    expect(am.inhibit_rules?.length).toBeGreaterThan(0);
    for (const rule of am.inhibit_rules ?? []) {
      for (const name of [alertname(rule.source_matchers), alertname(rule.target_matchers)]) {
        const carried = [...(labels.get(name) ?? [])];
        expect([name, rule.equal.filter((l) => !carried.includes(l))]).toEqual([name, []]);
      }
    }
  });
});
