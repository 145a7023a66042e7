import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseConfig } from '../../exporter/src/config';
import { createExporter, type Exporter } from '../../exporter/src/exporter';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import type { JobUsage } from '../../exporter/src/model/attribution';
import { COMPONENTS } from '../../exporter/src/core';
import { silentLogger } from '../../exporter/src/util/log';

/**
 * Real processes on this machine: two CPU burners with different loads, a writer, and a parent
 * whose children come and go. The tracker's CPU seconds and storage bytes must equal what this
 * test reads from /proc itself, and every scrape must conserve energy per component.
 */

const BURN_FULL = 'for(;;){}';
// At most a 30 % duty cycle: 30 ms of CPU, then 70 ms asleep. CPU time, not wall time: on a loaded
// machine a wall-clock busy loop gets the CPU it asks for (woken sleepers are favoured) while the
// full burner shares a core, and the two loads would no longer differ as launched.
const BURN_SOME =
  'function f(){const t=process.cpuUsage();let u=t;do u=process.cpuUsage(t);while(u.user+u.system<30000);setTimeout(f,70)}f()';
const WRITER = (dir: string) =>
  `const fs=require('fs');let i=0;setInterval(()=>{const f=${JSON.stringify(dir)}+'/f'+(i++%4);` +
  `const fd=fs.openSync(f,'w');fs.writeSync(fd,Buffer.alloc(262144,7));fs.fsyncSync(fd);fs.closeSync(fd)},40)`;
// A parent that, once measured, runs three short burners one after another (waiting for each),
// then idles.
const PARENT =
  "const {execFileSync}=require('child_process');setTimeout(()=>{for(let i=0;i<3;i++)execFileSync(process.execPath,['-e','const t=Date.now();while(Date.now()-t<350){}']);" +
  "process.stdout.write('done\\n');setInterval(()=>{},1000)},1000)";

/** The test's own reading of /proc: utime+stime(+cutime+cstime) and storage bytes. */
function procCpu(pid: number, withChildren = false): number {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
}
function procIo(pid: number): number {
  const kv = Object.fromEntries(
    fs
      .readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(': ') as [string, string]),
  );
  return Number(kv.read_bytes) + Number(kv.write_bytes) - Number(kv.cancelled_write_bytes);
}

function parseMetric(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    out.push({ labels, value: Number(line.slice(close + 2)) });
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('attribution inputs from real processes', () => {
  let exp: Exporter;
  let registry: JobTracker;
  let dir: string;
  const children: ChildProcess[] = [];
  const usages: JobUsage[][] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-real-'));
    // The test ticks by hand; the interval only sets the read timeouts (80 %): long enough that
    // reading the jobs' processes never times out on a loaded machine (a timed-out read would
    // finish after the test summed the usages).
    const config = parseConfig({ jobs: { ledger: '' }, sample: { interval: '2s' } });
    registry = new JobTracker({
      procfs: '/proc',
      log: silentLogger,
      liveCap: 10,
      retentionMs: 60_000,
      checkpointMs: 1000,
      carbon: config.carbon,
      discovery: { slurm: false, kubernetes: false, env: false },
    });
    const usage = registry.usage.bind(registry);
    registry.usage = async (...args) => {
      const u = await usage(...args);
      usages.push(u);
      return u;
    };
    exp = await createExporter(config, { log: silentLogger, jobs: registry });
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await exp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('CPU seconds and store bytes match /proc; conservation holds on every scrape', async () => {
    const spawnNode = (code: string) => {
      const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(c);
      return c;
    };
    const full = spawnNode(BURN_FULL);
    const some = spawnNode(BURN_SOME);
    const writer = spawnNode(WRITER(dir));
    const parent = spawnNode(PARENT);
    const pids = [full, some, writer, parent].map((c) => c.pid as number);
    await sleep(400); // let them start; their CPU so far is not part of the jobs
    const stopAll = (sig: NodeJS.Signals) => pids.forEach((p) => process.kill(p, sig));

    const ids = ['full', 'some', 'writer', 'parent'];
    stopAll('SIGSTOP');
    ids.forEach((id, i) => registry.register({ id, name: id, pids: [pids[i]] }));
    await exp.sampler.tick(); // dt = 0: sources' baseline
    await exp.sampler.tick(); // the tracker's baseline for these jobs
    const cpu0 = pids.map((p, i) => procCpu(p, ids[i] === 'parent'));
    const procCpuOwn0 = procCpu(parent.pid as number);
    const io0 = procIo(writer.pid as number);
    usages.length = 0;

    const scrapes: string[] = [];
    stopAll('SIGCONT');
    const parentDone = new Promise<void>((r) => parent.stdout?.on('data', (d: Buffer) => d.toString().includes('done') && r()));
    // 2.5 s and at least 6 ticks (a loaded machine ticks slower than every 250 ms).
    const until = Date.now() + 2500;
    while (Date.now() < until || scrapes.length < 6) {
      await sleep(250);
      await exp.sampler.tick();
      scrapes.push((await exp.metrics.render(false, false)).text);
    }
    await parentDone;
    stopAll('SIGSTOP');
    await exp.sampler.tick();
    scrapes.push((await exp.metrics.render(false, false)).text);
    const cpu1 = pids.map((p, i) => procCpu(p, ids[i] === 'parent'));
    const procCpuOwn1 = procCpu(parent.pid as number);
    const io1 = procIo(writer.pid as number);
    stopAll('SIGCONT');

    const sumOf = (id: string, f: (u: JobUsage) => number) => usages.flat().reduce((a, u) => a + (u.id === id ? f(u) : 0), 0);
    ids.forEach((id, i) => {
      // Exact: the processes were stopped at both ends, so /proc did not move between readings.
      expect(Math.round(sumOf(id, (u) => u.cpuSeconds) * 100)).toBe(cpu1[i] - cpu0[i]);
    });
    // The parent's children came and went between readings; their CPU (in the parent's cutime,
    // read by this test) is part of the exact match above.
    expect(cpu1[3] - cpu0[3]).toBeGreaterThan(procCpuOwn1 - procCpuOwn0);
    // Loads differ as launched: a full burner above a 30 % one.
    expect(sumOf('full', (u) => u.cpuSeconds)).toBeGreaterThan(1.5 * sumOf('some', (u) => u.cpuSeconds));
    expect(sumOf('writer', (u) => u.ioBytes)).toBe(io1 - io0);
    expect(io1 - io0).toBeGreaterThan(1_000_000);
    expect(sumOf('full', (u) => u.ioBytes)).toBe(0);

    // Conservation on every scrape: Σ job counters (incl. unattributed) = Σ node counters.
    expect(scrapes.length).toBeGreaterThan(5);
    for (const text of scrapes) {
      const node = parseMetric(text, 'jouleflow_node_energy_joules_total');
      const jobs = parseMetric(text, 'jouleflow_job_energy_joules_total');
      for (const c of COMPONENTS) {
        const n = node.filter((s) => s.labels.component === c).reduce((a, s) => a + s.value, 0);
        const j = jobs.filter((s) => s.labels.component === c).reduce((a, s) => a + s.value, 0);
        expect(Math.abs(n - j)).toBeLessThanOrEqual(1e-9 * Math.max(1, n));
      }
    }
    // And the jobs got energy in proportion to their CPU: the full burner more than the 30 % one.
    const last = parseMetric(scrapes[scrapes.length - 1], 'jouleflow_job_energy_joules_total');
    const computeOf = (id: string) =>
      last.filter((s) => s.labels.job_id === id && s.labels.component === 'compute').reduce((a, s) => a + s.value, 0);
    expect(computeOf('full')).toBeGreaterThan(computeOf('some'));
    expect(computeOf('some')).toBeGreaterThan(0);
  });
});
