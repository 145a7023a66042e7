import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parseExposition, sumSeries } from '../helpers/exporter-process';
import { freePort, REPO } from '../prometheus/lib';
import {
  BUILD_TIMEOUT_MS,
  buildImage,
  httpText,
  IMAGE,
  mustPodman,
  packageVersion,
  podman,
  podmanUnusable,
  removeContainers,
  removeVolumes,
  until,
} from './podman';

/**
 * The exporter image, built by scripts/build-image.sh and run with podman as README documents:
 * /metrics with the four components read through the host's /proc and /sys mounted read-only,
 * /healthz and the HEALTHCHECK, a job's totals in the ledger volume across `podman restart`,
 * SIGTERM, the unprivileged default user, the demo, OCI labels and the size budget.
 */

/** MB (10^6 bytes). 225 MB today: node 99, npm 18, Debian /usr ~75, node_modules 38, exporter 7. */
const SIZE_BUDGET_MB = 250;
const COMPONENTS = ['compute', 'transmit', 'store', 'cooling'];

const unusable = podmanUnusable();
if (unusable) console.warn(`test/container/image.test.ts skipped: ${unusable}`);
const suite = unusable ? describe.skip : describe;
// waits below are bounded one by one; this only keeps jest's 30 s default from cutting them short
jest.setTimeout(300_000);

suite('the exporter image under podman', () => {
  const name = `jouleflow-image-${process.pid}`;
  const volume = `${name}-data`;
  const token = randomBytes(16).toString('hex');
  let url = '';
  let trainer: ChildProcess | undefined;

  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const metrics = async () => parseExposition((await httpText(`${url}/metrics`)).text);

  beforeAll(async () => {
    console.log(`scripts/build-image.sh stages:\n${buildImage().join('\n')}`);
    removeContainers(name);
    removeVolumes(volume);
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    // The run command README documents: host /proc and /sys read-only, host PIDs, the ledger on a
    // volume, root with only the two capabilities RAPL and /proc/PID/io need.
    mustPodman([
      'run', '-d', '--name', name, '-p', `127.0.0.1:${port}:10042`, '--pid', 'host',
      '-v', '/proc:/host/proc:ro', '-v', '/sys:/host/sys:ro', '-v', `${volume}:/var/lib/jouleflow`,
      '--user', '0:0', '--cap-drop', 'ALL', '--cap-add', 'DAC_READ_SEARCH', '--cap-add', 'SYS_PTRACE',
      '-e', `JOULEFLOW_JOBS_TOKEN=${token}`,
      IMAGE, 'serve', '--web.listen-address=:10042', '--path.sysfs=/host/sys', '--path.procfs=/host/proc',
      '--jobs.ledger=/var/lib/jouleflow/jobs.db',
    ]); // prettier-ignore
    const t0 = Date.now();
    await until('/healthz 200 from the container', 60_000, async () =>
      (await httpText(`${url}/healthz`)).status === 200 ? true : undefined,
    );
    console.log(`container serving /healthz ${((Date.now() - t0) / 1000).toFixed(1)} s after podman run returned`);
  }, BUILD_TIMEOUT_MS + 120_000);

  afterAll(() => {
    if (trainer && trainer.exitCode === null) trainer.kill('SIGKILL');
    removeContainers(name, `${name}-user`, `${name}-demo`);
    removeVolumes(volume, `${name}-user-data`);
  }, 120_000);

  test('OCI labels carry the version and revision; the default user is unprivileged; HEALTHCHECK kept', () => {
    const inspect = JSON.parse(mustPodman(['image', 'inspect', IMAGE])) as Array<{
      Labels: Record<string, string>;
      Config: { User: string };
      Healthcheck?: { Test: string[] };
    }>;
    const { Labels: labels, Config: config, Healthcheck: healthcheck } = inspect[0];
    const head = spawnSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    expect(labels['org.opencontainers.image.version']).toBe(packageVersion());
    expect(labels['org.opencontainers.image.revision']).toMatch(new RegExp(`^${head}(-dirty)?$`));
    expect(labels['org.opencontainers.image.source']).toBeTruthy();
    expect(labels['org.opencontainers.image.licenses']).toBe('Apache-2.0');
    expect(config.User).toBe('10042:10042');
    expect(healthcheck?.Test.join(' ')).toContain('127.0.0.1:10042/healthz');
  });

  test(`image size within ${SIZE_BUDGET_MB} MB; where the bytes go`, () => {
    const size = Number(mustPodman(['image', 'inspect', '--format', '{{.Size}}', IMAGE])) / 1e6;
    const du = mustPodman(
      ['run', '--rm', '--user', '0', '--entrypoint', 'du', IMAGE, '-sx', '--block-size=1000000', '/usr/local/bin/node', '/usr/local/lib/node_modules/npm',
        '/usr/local/include', '/opt/jouleflow/node_modules', '/opt/jouleflow/exporter', '/opt/jouleflow/test', '/usr/lib', '/usr/share', '/usr/bin', '/var'],
      120_000,
    ); // prettier-ignore
    console.log(`image ${IMAGE}: ${size.toFixed(0)} MB (budget ${SIZE_BUDGET_MB} MB); MB by path:\n${du}`);
    expect(size).toBeGreaterThan(50);
    expect(size).toBeLessThan(SIZE_BUDGET_MB);
  });

  test('.dockerignore keeps the build context to sources and lock files (under 5 MB, no node_modules, .git or dist)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jouleflow-context-'));
    const probe = `localhost/jouleflow-context-probe:${process.pid}`;
    try {
      writeFileSync(
        join(dir, 'Containerfile'),
        'FROM localhost/node:20-bookworm-slim-debian\nCOPY . /ctx\nRUN du -sk /ctx | cut -f1 > /ctx.kb && find /ctx -name node_modules -o -name .git -o -name dist > /ctx.unwanted\n',
      );
      mustPodman(['build', '--pull=never', '--no-cache', '-q', '-t', probe, '-f', join(dir, 'Containerfile'), REPO], 300_000);
      const [kb, ...unwanted] = mustPodman(['run', '--rm', '--entrypoint', 'cat', probe, '/ctx.kb', '/ctx.unwanted']).split('\n');
      console.log(`build context: ${kb} kB`);
      expect(Number(kb)).toBeLessThan(5000);
      expect(unwanted.filter(Boolean)).toEqual([]);
    } finally {
      podman(['rmi', '-f', probe]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('/metrics: all four components from the host /proc and /sys (mounted read-only), and jouleflow_build_info', async () => {
    const m = await until('node energy > 0 in every component', 60_000, async () => {
      const s = await metrics();
      return COMPONENTS.every((c) => sumSeries(s, 'jouleflow_node_energy_joules_total', { component: c }) > 0) ? s : undefined;
    });
    expect(m.get(`jouleflow_build_info{version="${packageVersion()}",node_version="v20.20.2",mode="normal"}`)).toBe(1);
    // the disks and NICs are the host's (read from the host's sysfs, not the container's)
    const hostDisks = readdirSync('/sys/block').filter((d) => !/^(loop|ram|dm-|zram)/.test(d));
    const hostNics = readdirSync('/sys/class/net').filter((n) => n !== 'lo');
    const devices = (component: string) =>
      [...m.keys()]
        .filter((k) => k.startsWith('jouleflow_node_energy_joules_total{') && k.includes(`component="${component}"`))
        .map((k) => /device="([^"]*)"/.exec(k)?.[1]);
    expect(devices('store').filter((d) => hostDisks.includes(d as string)).length).toBeGreaterThan(0);
    expect(devices('transmit').filter((d) => hostNics.includes(d as string)).length).toBeGreaterThan(0);
    const mounts = JSON.parse(mustPodman(['inspect', '--format', '{{json .Mounts}}', name])) as Array<{ Destination: string; RW: boolean }>;
    for (const dest of ['/host/proc', '/host/sys'])
      expect({ dest, rw: mounts.find((x) => x.Destination === dest)?.RW }).toEqual({ dest, rw: false });
    expect(podman(['exec', name, 'touch', '/host/sys/jouleflow-write-probe']).stderr).toMatch(/Read-only file system/);
  });

  test('/healthz and the image HEALTHCHECK (podman healthcheck run)', async () => {
    const h = await httpText(`${url}/healthz`);
    expect(h.status).toBe(200);
    expect(JSON.parse(h.text)).toMatchObject({ status: 'ok' });
    const r = podman(['healthcheck', 'run', name]);
    expect({ status: r.status, out: r.stdout.trim() }).toEqual({ status: 0, out: '' }); // podman 4.3: exit 0 and silent when healthy
    expect(mustPodman(['inspect', '--format', '{{.State.Health.Status}}', name])).toBe('healthy');
  });

  test("a job's totals survive `podman restart` (ledger volume)", async () => {
    // a host process that burns a little CPU: the container sees it through --pid=host. The API is
    // reached through a published port, so the exporter sees a remote caller: reads need the token too.
    trainer = spawn(process.execPath, ['-e', 'setInterval(() => { const e = Date.now() + 50; while (Date.now() < e); }, 100)'], {
      stdio: 'ignore',
    });
    const id = `ledger-test-${process.pid}`;
    const reg = await httpText(`${url}/api/v1/jobs`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ id, name: 'ledger test', pids: [trainer.pid] }),
    });
    expect({ status: reg.status, body: reg.text }).toMatchObject({ status: 201 });
    await until(`job ${id} measured`, 60_000, async () => {
      const r = JSON.parse((await httpText(`${url}/api/v1/jobs/${id}`, { headers: auth })).text) as {
        energy: { compute: { joules: number } };
      };
      return r.energy.compute.joules > 0 ? true : undefined;
    });
    trainer.kill('SIGKILL');
    const end = await httpText(`${url}/api/v1/jobs/${id}/end`, { method: 'POST', headers: auth });
    expect(end.status).toBe(200);
    const final = JSON.parse(end.text) as { state: string; total: { joules: number }; energy: Record<string, { joules: number }> };
    expect(final.state).toBe('ended');
    expect(final.total.joules).toBeGreaterThan(0);

    mustPodman(['restart', '-t', '20', name], 120_000);
    await until('/healthz after restart', 60_000, async () => ((await httpText(`${url}/healthz`)).status === 200 ? true : undefined));
    const after = JSON.parse((await httpText(`${url}/api/v1/jobs/${id}`, { headers: auth })).text) as typeof final;
    expect(after.state).toBe('ended');
    expect(after.total.joules).toBeCloseTo(final.total.joules, 6);
    for (const c of COMPONENTS) expect({ c, j: after.energy[c]?.joules }).toEqual({ c, j: expect.closeTo(final.energy[c].joules, 6) });
    const list = JSON.parse((await httpText(`${url}/api/v1/jobs?all=1`, { headers: auth })).text) as { jobs: Array<{ id: string }> };
    expect(list.jobs.map((j) => j.id)).toContain(id);
  });

  test('SIGTERM stops the container, exit status 0 (bounded wait)', async () => {
    mustPodman(['kill', '--signal', 'TERM', name]);
    const t0 = Date.now();
    const exit = await until('the container to stop after SIGTERM', 30_000, () => {
      const [running, code] = mustPodman(['inspect', '--format', '{{.State.Running}} {{.State.ExitCode}}', name]).split(' ');
      return running === 'false' ? Number(code) : undefined;
    });
    console.log(`stopped ${((Date.now() - t0) / 1000).toFixed(1)} s after SIGTERM (exit ${exit})`);
    expect(exit).toBe(0);
  });

  test('as the default unprivileged user (no capabilities): serves /metrics and writes its ledger volume', async () => {
    const port = await freePort();
    const n = `${name}-user`;
    mustPodman(['run', '-d', '--name', n, '-p', `127.0.0.1:${port}:10042`, '-v', `${n}-data:/var/lib/jouleflow`, IMAGE,
      'serve', '--web.listen-address=:10042', '--jobs.ledger=/var/lib/jouleflow/jobs.db']); // prettier-ignore
    await until('node energy from the unprivileged container', 60_000, async () => {
      const s = parseExposition((await httpText(`http://127.0.0.1:${port}/metrics`)).text);
      return sumSeries(s, 'jouleflow_node_energy_joules_total', { component: 'compute' }) > 0 ? true : undefined;
    });
    expect(mustPodman(['exec', n, 'id', '-u'])).toBe('10042');
    expect(mustPodman(['exec', n, 'grep', '^CapEff', '/proc/self/status'])).toMatch(/^CapEff:\s+0+$/);
    expect(podman(['exec', n, 'test', '-s', '/var/lib/jouleflow/jobs.db']).status).toBe(0);
  });

  test('the capabilities README documents: uid 10042 needs DAC_READ_SEARCH for root-only sysfs files (RAPL), and it plus SYS_PTRACE for /proc/PID/io', () => {
    // RAPL's energy_uj where the host has it, else another root-only (0400) sysfs file
    const find = spawnSync(
      'sh',
      [
        '-c',
        'ls /sys/class/powercap/intel-rapl:0/energy_uj 2>/dev/null || find /sys/kernel -maxdepth 3 -type f -perm 0400 2>/dev/null | head -n 1',
      ],
      { encoding: 'utf8' },
    );
    const rootOnly = find.stdout.trim().split('\n')[0];
    expect(rootOnly).toMatch(/^\/sys\//);
    // a "job" of another user (root, here): its /proc/PID/io is mode 0400 and ptrace-guarded
    const job = spawn('sleep', ['300'], { stdio: 'ignore' });
    try {
      const read = (caps: string[]) =>
        podman(['run', '--rm', '--pid', 'host', '-v', '/proc:/host/proc:ro', '-v', '/sys:/host/sys:ro', '--user', '10042', '--cap-drop', 'ALL',
          ...caps.flatMap((c) => ['--cap-add', c]), '--entrypoint', 'sh', IMAGE, '-c',
          `head -c 1 /host/proc/${job.pid}/io >/dev/null && echo io-ok; head -c 1 /host${rootOnly} >/dev/null && echo sysfs-ok; true`], 120_000).stdout.trim(); // prettier-ignore
      expect(read([])).toBe('');
      expect(read(['SYS_PTRACE'])).toBe('');
      expect(read(['DAC_READ_SEARCH'])).toBe('sysfs-ok');
      expect(read(['SYS_PTRACE', 'DAC_READ_SEARCH']).split('\n')).toEqual(['io-ok', 'sysfs-ok']);
    } finally {
      job.kill('SIGKILL');
    }
  });

  test('the demo (docker-compose --profile demo): GPU energy from the replayed H200 trace, attributed to the demo job', async () => {
    const port = await freePort();
    const n = `${name}-demo`;
    mustPodman(['run', '-d', '--name', n, '-p', `127.0.0.1:${port}:10042`, '-w', '/opt/jouleflow', '--entrypoint', '["node","scripts/demo.mjs"]',
      '-e', 'JOULEFLOW_DEMO_LISTEN=0.0.0.0:10042', '-e', 'JOULEFLOW_DEMO_HOURS=1', IMAGE]); // prettier-ignore
    const trace = JSON.parse(readFileSync(`${REPO}/test/fixtures/nvidia-h200/training-trace.json`, 'utf8')) as {
      samples: Array<{ power_mw: number }>;
    };
    const maxWatts = Math.max(...trace.samples.map((s) => s.power_mw)) / 1000;
    const started = Date.now();
    const m = await until('GPU energy attributed to demo-gpt2-small', 90_000, async () => {
      const s = parseExposition((await httpText(`http://127.0.0.1:${port}/metrics`)).text);
      return sumSeries(s, 'jouleflow_job_energy_joules_total', { job_id: 'demo-gpt2-small', component: 'compute' }) > 0 &&
        sumSeries(s, 'jouleflow_node_energy_joules_total', { source: 'nvml' }) > 0 ? s : undefined; // prettier-ignore
    });
    const gpuJoules = sumSeries(m, 'jouleflow_node_energy_joules_total', { source: 'nvml' });
    const elapsed = (Date.now() - started) / 1000 + 60; // + the container's start before `started`, generously
    expect(gpuJoules).toBeLessThan(maxWatts * elapsed); // never more than the trace's peak power allows
    expect([...m.keys()].some((k) => k.startsWith('jouleflow_build_info{') && k.includes('mode="demo"'))).toBe(true);
  });
});
