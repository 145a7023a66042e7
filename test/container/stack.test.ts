import { spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import { join } from 'path';
import { freePort, loadRules, REPO, ruleFiles } from '../prometheus/lib';
import { BUILD_TIMEOUT_MS, buildImage, httpText, mustPodman, podman, podmanEnv, podmanUnusable, until, type Result } from './podman';

/**
 * docker-compose.yml run for real under podman-compose 1.0: the exporter, Prometheus and
 * Alertmanager services with test/container/compose.test-peers.yml swapping the upstream
 * Prometheus/Alertmanager images (not obtainable here) for images of Debian's packages, same
 * commands, config files and mounts. Grafana has no image here: its provisioning is checked
 * statically (test/dashboards/). Host ports are free ones picked at run time.
 */

const PEERS = join(REPO, 'test/container/peers');
const SERVICES = ['jouleflow', 'prometheus', 'alertmanager'];

/** Debian's prometheus / prometheus-alertmanager in the local Debian base (layer-cached after the first build). */
function buildPeers(): void {
  for (const peer of ['prometheus', 'alertmanager']) {
    mustPodman(
      [
        'build',
        '--pull=never',
        '--network',
        'host',
        '-q',
        '-f',
        join(PEERS, `Containerfile.${peer}`),
        '-t',
        `localhost/jouleflow-test-${peer}:debian`,
        PEERS,
      ],
      600_000,
    );
  }
}

function compose(project: string, env: NodeJS.ProcessEnv, args: string[], timeoutMs = 300_000): Result {
  const r = spawnSync(
    'podman-compose',
    ['-p', project, '-f', 'docker-compose.yml', '-f', 'test/container/compose.test-peers.yml', ...args],
    {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...podmanEnv(), ...env },
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
    },
  );
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

function down(project: string, env: NodeJS.ProcessEnv): void {
  compose(project, env, ['down', '-v', '-t', '5'], 180_000);
  podman(['network', 'rm', '-f', `${project}_default`]); // podman-compose 1.0 leaves it behind
  // and the volumes of a container it was still restarting (restart: unless-stopped)
  const volumes = podman(['volume', 'ls', '-q', '--filter', `label=io.podman.compose.project=${project}`])
    .stdout.split('\n')
    .filter(Boolean);
  if (volumes.length) podman(['volume', 'rm', '-f', ...volumes]);
}

interface Target {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

let unusable = podmanUnusable();
if (!unusable && spawnSync('podman-compose', ['--version'], { encoding: 'utf8' }).error)
  unusable = 'podman-compose is not installed (apt-get install -y podman-compose)';
if (unusable) console.warn(`test/container/stack.test.ts skipped: ${unusable}`);
const suite = unusable ? describe.skip : describe;
// waits below are bounded one by one; this only keeps jest's 30 s default from cutting them short
jest.setTimeout(300_000);

suite('the compose stack under podman-compose: exporter → Prometheus → Alertmanager', () => {
  const project = `jouleflowstack${process.pid}`;
  const token = randomBytes(16).toString('hex');
  const env: NodeJS.ProcessEnv = { JOULEFLOW_JOBS_TOKEN: token };
  let prom = '';
  let am = '';
  let exporter = '';

  beforeAll(async () => {
    buildImage();
    buildPeers();
    for (const [k, v] of Object.entries({ JOULEFLOW_EXPORTER_PORT: 0, JOULEFLOW_PROMETHEUS_PORT: 0, JOULEFLOW_ALERTMANAGER_PORT: 0 }))
      env[k] = String(v || (await freePort()));
    exporter = `http://127.0.0.1:${env.JOULEFLOW_EXPORTER_PORT}`;
    prom = `http://127.0.0.1:${env.JOULEFLOW_PROMETHEUS_PORT}`;
    am = `http://127.0.0.1:${env.JOULEFLOW_ALERTMANAGER_PORT}`;
    down(project, env);
    // podman-compose 1.0 drops `pid: host`: README's podman-compose command passes it to podman run
    const up = compose(project, env, ['--podman-run-args=--pid=host', 'up', '-d', ...SERVICES]);
    if (up.status !== 0) throw new Error(`podman-compose up failed (exit ${up.status}):\n${up.stdout}${up.stderr}`);
  }, BUILD_TIMEOUT_MS + 600_000);

  afterAll(() => down(project, env), 240_000);

  test('the exporter container serves /metrics on the published port; the job API token passes through from the environment', async () => {
    await until('the exporter container /healthz', 90_000, async () =>
      (await httpText(`${exporter}/healthz`)).status === 200 ? true : undefined,
    );
    const body = JSON.stringify({ name: 'token check', pids: [process.pid] });
    const without = await httpText(`${exporter}/api/v1/jobs`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(without.status).toBe(401); // a token is configured: the literal "${JOULEFLOW_JOBS_TOKEN:-}" problem would be 401 for both
    const withToken = await httpText(`${exporter}/api/v1/jobs`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    });
    expect({ status: withToken.status, body: withToken.text }).toMatchObject({ status: 201 });
    const id = (JSON.parse(withToken.text) as { id: string }).id;
    expect(
      (await httpText(`${exporter}/api/v1/jobs/${id}/end`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status,
    ).toBe(200);
  });

  test('Prometheus discovers and scrapes the exporter container by its service name', async () => {
    const t = await until('jouleflow target up in Prometheus', 180_000, async () => {
      const r = JSON.parse((await httpText(`${prom}/api/v1/targets`)).text) as { data: { activeTargets: Target[] } };
      return r.data.activeTargets.find((x) => x.labels.job === 'jouleflow' && x.health === 'up');
    });
    expect(t.labels.instance).toBe('jouleflow');
    const q = await until('exporter series in Prometheus', 60_000, async () => {
      const r = JSON.parse(
        (await httpText(`${prom}/api/v1/query?query=${encodeURIComponent('count by (component) (jouleflow_node_energy_joules_total)')}`))
          .text,
      ) as {
        data: { result: Array<{ metric: { component: string } }> };
      };
      return r.data.result.length >= 4 ? r.data.result : undefined;
    });
    expect(q.map((x) => x.metric.component).sort()).toEqual(['compute', 'cooling', 'store', 'transmit']);
  });

  test("Prometheus loaded jouleflow's rule groups (and the site rule directory) and evaluates them without error", async () => {
    // Every rules file of dashboards/alerts is loaded; the first group is jouleflow.rules.yml's.
    const expected = [
      loadRules(),
      ...ruleFiles()
        .filter((f) => !f.endsWith('/jouleflow.rules.yml'))
        .map((f) => loadRules(f)),
    ].flatMap((r) => r.groups.map((g) => g.name));
    const groups = await until('every rule evaluated once', 120_000, async () => {
      const r = JSON.parse((await httpText(`${prom}/api/v1/rules`)).text) as {
        data: { groups: Array<{ name: string; file: string; rules: Array<{ name: string; health: string; lastError?: string }> }> };
      };
      const g = r.data.groups;
      return g.length > 0 && g.every((x) => x.rules.every((rule) => rule.health !== 'unknown')) ? g : undefined;
    });
    expect(groups.map((g) => g.name).sort()).toEqual([...expected, 'jouleflow-stack-test'].sort());
    expect(groups.find((g) => g.name === expected[0])?.file).toBe('/etc/prometheus/rules/jouleflow.rules.yml');
    const bad = groups.flatMap((g) => g.rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`));
    expect(bad).toEqual([]);
  });

  test('an alert fired by Prometheus reaches Alertmanager', async () => {
    const alerts = await until('JouleflowStackTest in Alertmanager', 180_000, async () => {
      const r = JSON.parse((await httpText(`${am}/api/v2/alerts`)).text) as Array<{
        labels: Record<string, string>;
        receivers: Array<{ name: string }>;
      }>;
      const a = r.filter((x) => x.labels.alertname === 'JouleflowStackTest');
      return a.length ? a : undefined;
    });
    // routed by deploy/alertmanager/alertmanager.yml: severity="info" → jouleflow-info
    expect(alerts[0].receivers.map((x) => x.name)).toEqual(['jouleflow-info']);
    expect(alerts[0].labels.severity).toBe('info');
  });

  test('without the host PID namespace (plain podman-compose up) the exporter refuses to start, saying why', async () => {
    const other = `${project}nopid`;
    const otherEnv: NodeJS.ProcessEnv = { JOULEFLOW_EXPORTER_PORT: String(await freePort()) };
    try {
      down(other, otherEnv);
      const up = compose(other, otherEnv, ['up', '-d', '--no-deps', 'jouleflow']);
      expect(up.status).toBe(0);
      const container = `${other}_jouleflow_1`;
      const logs = await until('the refusal in the container log', 60_000, () => {
        const l = podman(['logs', container]);
        return /does not share the host's PID namespace/.test(l.stderr + l.stdout) ? l.stderr + l.stdout : undefined;
      });
      expect(logs).toContain('--podman-run-args=--pid=host');
      // exit 2, as for any start-up error (seen between the restarts `restart: unless-stopped` makes)
      const exit = await until('the refused container to exit', 60_000, () => {
        const [running, code] = mustPodman(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', container]).split(' ');
        return running === 'false' && code !== '0' ? code : undefined;
      });
      expect(exit).toBe('2');
    } finally {
      down(other, otherEnv);
    }
  });
});
