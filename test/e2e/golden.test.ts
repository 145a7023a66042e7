import { existsSync, readFileSync, writeFileSync } from 'fs';
import { join } from 'path';
import { parseConfig } from '../../exporter/src/config';
import { createExporter } from '../../exporter/src/exporter';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import { silentLogger } from '../../exporter/src/util/log';
import { FixtureTree, bumpDiskstats, bumpProcStat } from '../helpers/fixture';

/**
 * The golden exposition (like node_exporter's end-to-end-test.sh): two ticks on
 * test/fixtures/host with a fixed clock, diffed against the checked-in e2e-output.txt. It pins
 * every family, HELP text and label set that dashboards and alert rules consume.
 * `UPDATE_GOLDEN=1 npx jest test/e2e/golden.test.ts` regenerates the file after an intended change.
 * Families that measure the exporter itself (process_*, sample durations, build info) vary by
 * machine and run, so they are left out.
 */

const GOLDEN = join(__dirname, 'e2e-output.txt');
const VARYING = /^(process_|jouleflow_sample_duration_seconds|jouleflow_build_info|jouleflow_scrape_cache_hits_total)/;

function stable(text: string): string {
  return text
    .split(/\n(?=# HELP )/)
    .filter((family) => !VARYING.test(family.replace(/^# HELP /, '')))
    .join('\n');
}

test('two ticks on the host fixture expose exactly the golden text, in both formats', async () => {
  const tree = new FixtureTree('host');
  const start = 1_800_000_000_000;
  let now = start;
  const config = parseConfig({
    paths: { sysfs: tree.sysfs, procfs: tree.procfs },
    nvml: { library: join(tree.root, 'no-libnvidia-ml.so.1') },
    carbon: { zone: 'DE', gramsPerKwh: 380 },
    // The test steps its own clock by 1 s; real-time read timeouts (4 s) that a loaded machine's
    // first reads meet, since one timed-out read would change the exposition.
    sample: { interval: '5s', timeout: '4s' },
    // systeminformation describes the machine the test runs on, not the fixture: the inventory has
    // its own suites (test/inventory); here its series show what the exporter knows without it.
    inventory: { enabled: false },
  });
  const registry = new JobTracker({
    procfs: tree.procfs,
    log: silentLogger,
    clock: () => now,
    liveCap: 10,
    retentionMs: 60_000,
    checkpointMs: 5000,
    carbon: config.carbon,
    discovery: { slurm: false, kubernetes: false, env: false },
  });
  registry.register({ id: 'train-1', name: 'resnet "50"', cgroup: '/user.slice/train-1', labels: { user: 'ada' } });
  const exp = await createExporter(config, { log: silentLogger, clock: () => now, jobs: registry });
  try {
    await exp.sampler.tick();
    now += 1000;
    tree.add('sys/class/powercap/intel-rapl:0/energy_uj', 50_000_000); // package-0 +50 J
    tree.add('sys/class/powercap/intel-rapl:0:1/energy_uj', 2_000_000); // dram-0 +2 J
    bumpDiskstats(tree, 'nvme0n1', 2048, 4096);
    bumpProcStat(tree, 100, 100);
    await exp.sampler.tick();
    const prom = stable((await exp.metrics.render(false, false, false)).text);
    const om = stable((await exp.metrics.render(true, false, false)).text);
    const actual = `${prom}\n## OpenMetrics\n${om}`;
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(GOLDEN)) writeFileSync(GOLDEN, actual);
    expect(actual).toBe(readFileSync(GOLDEN, 'utf8'));
    // Independently of the file: the package counter's 50 J, and the node split exactly.
    expect(prom).toMatch(/^jouleflow_node_energy_joules_total\{component="compute",device="package-0",source="rapl"\} 50$/m);
  } finally {
    await exp.close();
    registry.close();
    tree.cleanup();
  }
});
