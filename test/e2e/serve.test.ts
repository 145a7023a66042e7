import { spawn, spawnSync } from 'child_process';
import { writeFileSync } from 'fs';
import { FixtureTree, bumpDiskstats, bumpProcStat } from '../helpers/fixture';
import { MAIN, ensureBuilt, parseExposition, startServe, sumSeries, waitFor, type RunningExporter } from '../helpers/exporter-process';

/**
 * `jouleflow serve` as a real process on the fixture tree: the test changes counters in the tree
 * and checks the scrape against energies it computes itself from those changes.
 */

const PKG = (d: string) => `jouleflow_node_energy_joules_total{component="compute",device="${d}",source="rapl"}`;
const STORE = (d: string) => `jouleflow_node_energy_joules_total{component="store",device="${d}",source="diskstats"}`;
const NET = (d: string) => `jouleflow_node_energy_joules_total{component="transmit",device="${d}",source="netdev"}`;

async function scrape(url: string, accept?: string): Promise<{ text: string; type: string }> {
  const res = await fetch(`${url}/metrics`, { headers: accept ? { accept } : {} });
  return { text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool not found (apt-get install -y prometheus): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** `jouleflow serve` on a private copy of the fixture tree with this config, for one describe block. */
function serveOnFixture(config: string): { tree: FixtureTree; exp: RunningExporter } {
  const ctx = {} as { tree: FixtureTree; exp: RunningExporter };
  beforeAll(async () => {
    ctx.tree = new FixtureTree();
    const cfg = ctx.tree.path('jouleflow.yml');
    writeFileSync(cfg, config);
    ctx.exp = await startServe([
      `--config.file=${cfg}`,
      `--path.sysfs=${ctx.tree.sysfs}`,
      `--path.procfs=${ctx.tree.procfs}`,
      `--jobs.ledger=${ctx.tree.path('jobs.db')}`,
      // Short ticks, each read allowed the whole interval: the tests check that sources are up at
      // one instant, and 80 % of 100 ms is a deadline a loaded machine misses now and then.
      '--sample.interval=250ms',
      '--sample.timeout=250ms',
    ]);
  });
  afterAll(async () => {
    await ctx.exp?.stop();
    ctx.tree?.cleanup();
  });
  return ctx;
}

describe('jouleflow serve on a fixture tree with RAPL', () => {
  const f = serveOnFixture('disks:\n  ssd: { idleWatts: 0 }\n  hdd: { idleWatts: 0 }\nnics:\n  defaults: { idleWatts: 0 }\n');

  test('energies equal the counter changes made in the tree (wrap included), cooling = 0.56 × IT', async () => {
    const before = parseExposition((await scrape(f.exp.url)).text);
    f.tree.add('sys/class/powercap/intel-rapl:0/energy_uj', 50_000_000); // +50 J
    f.tree.write('sys/class/powercap/intel-rapl:1/energy_uj', '671150\n'); // wraps: 328 850 + 671 150 µJ = 1 J
    f.tree.add('sys/class/powercap/intel-rapl:0:1/energy_uj', 2_000_000); // dram-0 +2 J
    f.tree.add('sys/class/powercap/intel-rapl:0:0/energy_uj', 9_000_000); // core: inside package-0, not added
    bumpDiskstats(f.tree, 'nvme0n1', 1000, 2000);
    bumpDiskstats(f.tree, 'sda', 0, 100);
    bumpDiskstats(f.tree, 'sda1', 0, 100); // partition: its bytes are already in sda
    f.tree.add('sys/class/net/eth0/statistics/rx_bytes', 1e9);
    f.tree.add('sys/class/net/lo/statistics/rx_bytes', 1e9); // loopback: not counted
    f.tree.add('sys/class/infiniband/mlx5_0/ports/1/counters/port_xmit_data', 1e9); // 4e9 bytes of RDMA
    f.tree.add('sys/class/net/ib0/statistics/tx_bytes', 1e6); // IPoIB: already inside the port counters
    const ib = 'jouleflow_node_energy_joules_total{component="transmit",device="mlx5_0:1",source="infiniband"}';
    // Every changed counter in one scrape (a tick may fall between the writes above, and a
    // loaded machine may time out a read): then the exact checks below.
    const changed = [PKG('package-0'), PKG('package-1'), PKG('dram-0'), STORE('nvme0n1'), STORE('sda'), NET('eth0'), ib];
    const after = await waitFor(
      async () => {
        const s = parseExposition((await scrape(f.exp.url)).text);
        return changed.every((k) => (s.get(k) ?? 0) !== (before.get(k) ?? 0)) ? s : undefined;
      },
      `every changed counter to advance (${changed.join(', ')})`,
    );
    const d = (k: string) => (after.get(k) ?? NaN) - (before.get(k) ?? 0);

    expect(d(PKG('package-0'))).toBeCloseTo(50, 9);
    expect(d(PKG('package-1'))).toBeCloseTo(1, 9);
    expect(d(PKG('dram-0'))).toBeCloseTo(2, 9);
    expect(d(PKG('dram-1'))).toBe(0);
    expect([...after.keys()].some((k) => k.includes('device="core'))).toBe(false);
    expect(d(STORE('nvme0n1'))).toBeCloseTo(1000 * 512 * 5e-9 + 2000 * 512 * 5e-9, 12);
    expect(d(STORE('sda'))).toBeCloseTo(100 * 512 * 12e-9, 12);
    expect(after.has(STORE('sda1'))).toBe(false);
    expect(after.has(STORE('loop0'))).toBe(false);
    expect(d(NET('eth0'))).toBeCloseTo(8e9 * 5e-12, 12);
    expect(after.has(NET('ib0'))).toBe(false);
    expect(d(ib)).toBeCloseTo(4e9 * 8 * 5e-12, 12);
    expect(after.has(NET('lo'))).toBe(false);

    const it = ['compute', 'transmit', 'store'].reduce(
      (a, c) => a + sumSeries(after, 'jouleflow_node_energy_joules_total', { component: c }),
      0,
    );
    const cooling = sumSeries(after, 'jouleflow_node_energy_joules_total', { component: 'cooling', source: 'model' });
    expect(cooling).toBeCloseTo(0.56 * it, 6);
    for (const c of ['compute', 'transmit', 'store', 'cooling']) {
      const node = sumSeries(after, 'jouleflow_node_energy_joules_total', { component: c });
      const jobs = sumSeries(after, 'jouleflow_job_energy_joules_total', { component: c });
      expect(jobs).toBeCloseTo(node, 6);
    }
    expect(sumSeries(after, 'jouleflow_source_errors_total', { reason: 'counter_reset' })).toBe(0);
    expect(after.get('jouleflow_source_up{reader="rapl",device=""}')).toBe(1);
    expect(after.get('jouleflow_source_up{reader="rapl",device="package-1"}')).toBe(1);
  });

  test('exposition: HELP and TYPE for every metric, promtool check metrics is clean', async () => {
    const { text, type } = await scrape(f.exp.url);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(types.get('jouleflow_node_energy_joules_total')).toBe('counter');
    expect(types.get('jouleflow_job_energy_joules_total')).toBe('counter');
    expect(types.get('jouleflow_node_power_watts')).toBe('gauge');
    expect(types.get('jouleflow_pue_ratio')).toBe('gauge');
    expect(types.get('jouleflow_sample_duration_seconds')).toBe('histogram');
    for (const name of types.keys()) expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
    expect(text).toMatch(/^jouleflow_build_info\{version="[^"]+",node_version="v\d+[^"]*",mode="normal"\} 1$/m);
    const check = promtoolCheck(text);
    expect(check.output).toBe('');
    expect(check.status).toBe(0);
  });

  test('OpenMetrics and gzip are negotiated', async () => {
    const { text, type } = await scrape(f.exp.url, 'application/openmetrics-text; version=1.0.0');
    expect(type).toMatch(/^application\/openmetrics-text/);
    expect(text.trimEnd().endsWith('# EOF')).toBe(true);
    const res = await fetch(`${f.exp.url}/metrics`, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(await res.text()).toMatch(/jouleflow_node_energy_joules_total/);
  });

  test('landing page shows the sources and health is ok', async () => {
    const html = await (await fetch(f.exp.url)).text();
    expect(html).toMatch(/<td>rapl<\/td><td class="up">up<\/td>/);
    expect(html).toMatch(/<td>netdev<\/td><td class="up">up<\/td>/);
    const health = await fetch(`${f.exp.url}/healthz`);
    expect(health.status).toBe(200);
  });

  test('SIGTERM shuts down cleanly', async () => {
    expect(await f.exp.stop('SIGTERM')).toBe(0);
    expect(f.exp.logs()).toMatch(/shutting down/);
  });
});

describe('jouleflow serve without RAPL (a VM): models, labelled as such', () => {
  const f = serveOnFixture('sources:\n  rapl: false\ncpu:\n  tdpWatts: 120\ncooling:\n  mode: cop\n  supplyAirCelsius: 25\n');

  test('CPU power = TDP × Teads(u), DRAM = 0.392 W/GiB, cooling = IT / COP(25 °C)', async () => {
    // 50 % busy: the model sees it in each interval in which /proc/stat moved (0 % in one where it
    // did not), so it keeps moving while the test waits: a scrape that misses one tick finds the next.
    const load = setInterval(() => bumpProcStat(f.tree, 4, 4), 20);
    const cpu = 'jouleflow_node_power_watts{component="compute",device="cpu",source="model"}';
    const samples = await waitFor(async () => {
      const s = parseExposition((await scrape(f.exp.url)).text);
      return s.get(cpu) === 120 * 0.75 ? s : undefined;
    }, 'the CPU model to see 50 % load').finally(() => clearInterval(load));
    expect(samples.get('jouleflow_node_power_watts{component="compute",device="dram",source="model"}')).toBeCloseTo(64 * 0.392, 9);
    const cop = 0.0068 * 625 + 0.0008 * 25 + 0.458;
    const it = ['compute', 'transmit', 'store'].reduce(
      (a, c) => a + sumSeries(samples, 'jouleflow_node_energy_joules_total', { component: c }),
      0,
    );
    expect(sumSeries(samples, 'jouleflow_node_energy_joules_total', { component: 'cooling', source: 'model' })).toBeCloseTo(it / cop, 6);
    expect(samples.get('jouleflow_source_up{reader="rapl",device=""}')).toBeUndefined();
  });
});

test('a broken config stops start-up with exit code 2, naming the field', () => {
  ensureBuilt();
  const r = spawnSync(process.execPath, [MAIN, 'serve', '--sample.interval=10ms'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/sample\.interval \(--sample\.interval\): must be at least 100ms/);
});

test('a port in use is a clear error', async () => {
  const first = await startServe(['--path.sysfs=/nonexistent', '--path.procfs=/proc', '--jobs.ledger=']);
  const port = new URL(first.url).port;
  const second = spawn(process.execPath, [MAIN, 'serve', `--web.listen-address=127.0.0.1:${port}`, '--jobs.ledger='], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  second.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise((r) => second.once('exit', r));
  await first.stop();
  expect(code).toBe(1);
  expect(err).toMatch(/address already in use/);
});
