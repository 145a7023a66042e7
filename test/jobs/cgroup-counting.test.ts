import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import type { JobUsage } from '../../exporter/src/model/attribution';
import { silentLogger } from '../../exporter/src/util/log';
import { FakeProcfs } from './fakeproc';

/**
 * Jobs counted by their cgroup's counters (jobs/cgroup-counters.ts) on a fake procfs and a fake
 * cgroup mount written in the kernel's formats. The expected figures come from the counters the
 * test writes, never from the tracker.
 */

const BOOT_MS = 1_700_000_000_000;
const OLD = 50_000;

class CgroupFs {
  /** A sysfs tree: the cgroup mount under fs/cgroup, device names under dev/block. */
  readonly sysfs = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-sysfs-'));
  readonly root = path.join(this.sysfs, 'fs/cgroup');
  constructor() {
    fs.mkdirSync(path.join(this.sysfs, 'dev/block'), { recursive: true });
    fs.symlinkSync('../../devices/virtual/block/dm-0', path.join(this.sysfs, 'dev/block/253:0'));
    fs.symlinkSync('../../devices/pci0000:00/nvme0n1', path.join(this.sysfs, 'dev/block/259:0'));
  }
  /** v2: cpu.stat and io.stat under root/<cgroup>; the same bytes on dm-0 (253:0) as on the disk beneath it (259:0). */
  v2(cgroup: string, usageUsec: number, rbytes: number, wbytes: number, io = true): void {
    const dir = path.join(this.root, cgroup);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'cpu.stat'), `usage_usec ${usageUsec}\nuser_usec ${usageUsec}\nsystem_usec 0\n`);
    const line = (dev: string) => `${dev} rbytes=${rbytes} wbytes=${wbytes} rios=1 wios=1 dbytes=0 dios=0\n`;
    if (io) fs.writeFileSync(path.join(dir, 'io.stat'), line('253:0') + line('259:0'));
  }
  /** v1: cpuacct.usage (storage is counted by the processes there). */
  v1(cgroup: string, usageNs: number): void {
    fs.mkdirSync(path.join(this.root, 'cpu,cpuacct', cgroup), { recursive: true });
    fs.writeFileSync(path.join(this.root, 'cpu,cpuacct', cgroup, 'cpuacct.usage'), `${usageNs}\n`);
  }
  remove(cgroup: string): void {
    fs.rmSync(path.join(this.root, cgroup), { recursive: true, force: true });
  }
  cleanup(): void {
    fs.rmSync(this.sysfs, { recursive: true, force: true });
  }
}

class Harness {
  readonly fake = new FakeProcfs();
  readonly cg = new CgroupFs();
  uptimeS = 1000;
  readonly tracker: JobTracker;
  constructor(discovery = { slurm: false, kubernetes: false, env: true }) {
    this.tracker = new JobTracker({
      procfs: this.fake.root,
      cgroups: { sysfs: this.cg.sysfs, disksExclude: /^(loop|dm-|md)\d*/ },
      log: silentLogger,
      clock: () => BOOT_MS + this.uptimeS * 1000,
      liveCap: 100,
      retentionMs: 60_000,
      checkpointMs: 1000,
      carbon: { zone: 'test' },
      discovery,
    });
    this.fake.set(1, { ppid: 0, starttime: 1 });
  }
  step(): Map<string, JobUsage> {
    this.uptimeS += 1;
    this.fake.uptime(this.uptimeS);
    return new Map(this.tracker.measure(BOOT_MS + this.uptimeS * 1000, []).map((u) => [u.id, u]));
  }
  cleanup(): void {
    this.fake.cleanup();
    this.cg.cleanup();
  }
}

const V2 = (cgroup: string) => `0::${cgroup}\n`;

describe('jobs counted by their cgroup', () => {
  let h: Harness;
  beforeEach(() => (h = new Harness()));
  afterEach(() => h.cleanup());

  test('v2: CPU and I/O are the cgroup counters’ deltas from registration; the members’ own counters are not read', () => {
    h.cg.v2('/train/job_7', 10_000_000, 1000, 2000);
    h.fake.set(300, { ppid: 1, starttime: OLD, utime: 100, cgroup: V2('/train/job_7/step_0') });
    h.fake.set(301, { ppid: 300, starttime: OLD + 1, utime: 100, cgroup: V2('/train/job_7/step_0') });
    h.tracker.register({ id: '7', name: 'seven', cgroup: '/train/job_7' });
    // +1.5 s CPU, +12 288 bytes on the disk (listed again on the dm device above it: counted once).
    h.cg.v2('/train/job_7', 11_500_000, 1000 + 4096, 2000 + 8192);
    // The processes' own counters move too, differently: they must not be what is counted.
    h.fake.update(300, { utime: 400 });
    const u1 = h.step().get('7')!;
    expect(u1.cpuSeconds).toBeCloseTo(1.5, 9);
    expect(u1.ioBytes).toBe(12_288);
    expect(h.tracker.registry.job('7')?.members).toBe(2);
    // A process that exited between full scans: its CPU stays in the cgroup's counter, counted once.
    h.fake.remove(301);
    h.cg.v2('/train/job_7', 12_000_000, 5096, 10_192);
    const u2 = h.step().get('7')!;
    expect(u2.cpuSeconds).toBeCloseTo(0.5, 9);
    expect(u2.ioBytes).toBe(0);
  });

  test('v1: CPU from cpuacct.usage (ns); storage from the members’ /proc/PID/io (blkio misses buffered writeback)', () => {
    h.cg.v1('/bench/job-1', 2e9);
    const v1 = '7:blkio:/\n2:cpu,cpuacct:/bench/job-1\n0::/\n';
    h.fake.set(400, { ppid: 1, starttime: OLD, utime: 7, writeBytes: 1000, cgroup: v1 });
    h.tracker.register({ id: 'b1', name: 'b1', cgroup: '/bench/job-1' });
    h.step(); // the member's io baseline
    h.cg.v1('/bench/job-1', 2.25e9);
    h.fake.update(400, { utime: 90, writeBytes: 1000 + 1536 });
    const u = h.step().get('b1')!;
    expect(u.cpuSeconds).toBeCloseTo(0.25, 9);
    expect(u.ioBytes).toBe(1536);
  });

  test('v1: an interval in which the cgroup used no CPU reads no member’s io (a process that did not run did no I/O)', () => {
    h.cg.v1('/bench/job-2', 1e9);
    const v1 = '2:cpu,cpuacct:/bench/job-2\n0::/\n';
    h.fake.set(470, { ppid: 1, starttime: OLD, readBytes: 0, cgroup: v1 });
    h.tracker.register({ id: 'b2', name: 'b2', cgroup: '/bench/job-2' });
    h.step(); // baselines
    // Not possible on a real kernel (I/O needs the process to run); here it shows that io is not read.
    h.fake.update(470, { readBytes: 4096 });
    expect(h.step().get('b2')!.ioBytes).toBe(0);
    h.cg.v1('/bench/job-2', 1.001e9); // it ran: its io is read, from the last reading
    h.fake.update(470, { readBytes: 4096 + 512 });
    const u = h.step().get('b2')!;
    expect(u.cpuSeconds).toBeCloseTo(0.001, 9);
    expect(u.ioBytes).toBe(4096 + 512);
  });

  test('a Slurm prolog’s job, registered before its cgroup exists: everything the cgroup then counts is the job’s', () => {
    h.fake.set(450, { ppid: 1, starttime: OLD, cgroup: V2('/') });
    h.tracker.register({ id: '42', name: 'prolog', cgroup: '/slurm/job_42' });
    h.step();
    // slurmstepd makes the cgroup and starts the task in it; by the next scan it has used 0.8 s.
    h.cg.v2('/slurm/job_42', 800_000, 0, 64);
    h.fake.set(451, { ppid: 1, starttime: OLD + 100, cgroup: V2('/slurm/job_42/step_0') });
    const u = h.step().get('42')!;
    expect(u.cpuSeconds).toBeCloseTo(0.8, 9);
    expect(u.ioBytes).toBe(64);
  });

  test('two jobs given the same cgroup: its counters are neither’s alone, both are counted by their processes', () => {
    h.cg.v2('/shared', 0, 0, 0);
    h.fake.set(460, { ppid: 1, starttime: OLD, utime: 0, cgroup: V2('/shared') });
    h.tracker.register({ id: 's1', name: 's1', cgroup: '/shared' });
    h.tracker.register({ id: 's2', name: 's2', cgroup: '/shared' });
    h.step();
    h.cg.v2('/shared', 9_000_000, 0, 0);
    h.fake.update(460, { utime: 40 });
    const u = h.step();
    expect((u.get('s1')?.cpuSeconds ?? 0) + (u.get('s2')?.cpuSeconds ?? 0)).toBeCloseTo(0.4, 9);
  });

  test('another job’s process inside the cgroup: counted by processes; exact again once it has gone, with nothing counted twice', () => {
    h.cg.v2('/train/job_8', 0, 0, 0);
    h.fake.set(500, { ppid: 1, starttime: OLD, utime: 10, cgroup: V2('/train/job_8') });
    // JOULEFLOW_JOB takes precedence over the cgroup: this process is job "other"'s, inside job_8's cgroup.
    h.fake.set(501, { ppid: 1, starttime: OLD, utime: 10, cgroup: V2('/train/job_8'), environ: { JOULEFLOW_JOB: 'other' } });
    h.tracker.register({ id: '8', name: 'eight', cgroup: '/train/job_8' });
    h.step(); // baselines of the members
    h.cg.v2('/train/job_8', 5_000_000, 0, 0); // both processes' CPU
    h.fake.update(500, { utime: 60 }); // +0.5 s
    h.fake.update(501, { utime: 460 }); // +4.5 s
    let u = h.step();
    expect(u.get('8')!.cpuSeconds).toBeCloseTo(0.5, 9);
    expect(u.get('other')!.cpuSeconds).toBeCloseTo(4.5, 9);
    // "other" exits: job 8's cgroup now holds only its own process and counts it.
    h.fake.remove(501);
    h.cg.v2('/train/job_8', 5_200_000, 0, 0); // +0.2 s: 500's
    h.fake.update(500, { utime: 80 });
    u = h.step();
    expect(u.get('8')!.cpuSeconds).toBeCloseTo(0.2, 9);
    h.cg.v2('/train/job_8', 5_500_000, 0, 300);
    h.fake.update(500, { utime: 999 }); // ignored: the cgroup counts now
    u = h.step();
    expect(u.get('8')!.cpuSeconds).toBeCloseTo(0.3, 9);
    expect(u.get('8')!.ioBytes).toBe(300);
  });

  test('a member outside the cgroup (a child moved elsewhere) keeps the job on its processes', () => {
    h.cg.v2('/train/job_9', 0, 0, 0);
    h.fake.set(600, { ppid: 1, starttime: OLD, utime: 0, cgroup: V2('/train/job_9') });
    h.fake.set(601, { ppid: 600, starttime: OLD + 1, utime: 0, cgroup: V2('/elsewhere') });
    h.tracker.register({ id: '9', name: 'nine', cgroup: '/train/job_9' });
    h.step();
    h.cg.v2('/train/job_9', 1_000_000, 0, 0);
    h.fake.update(600, { utime: 100 });
    h.fake.update(601, { utime: 50 });
    expect(h.step().get('9')!.cpuSeconds).toBeCloseTo(1.5, 9); // both members, by their own counters
  });

  test('a cgroup that disappears: back to the members, from a fresh baseline (nothing counted twice)', () => {
    h.cg.v2('/train/job_10', 0, 0, 0);
    h.fake.set(700, { ppid: 1, starttime: OLD, utime: 0, cgroup: V2('/train/job_10') });
    h.tracker.register({ id: '10', name: 'ten', cgroup: '/train/job_10' });
    h.cg.v2('/train/job_10', 2_000_000, 0, 0);
    h.fake.update(700, { utime: 200 });
    expect(h.step().get('10')!.cpuSeconds).toBeCloseTo(2, 9);
    h.cg.remove('/train');
    h.fake.update(700, { utime: 300 });
    expect(h.step().get('10')!.cpuSeconds).toBe(0); // the process's first own reading: a baseline
    h.fake.update(700, { utime: 350 });
    expect(h.step().get('10')!.cpuSeconds).toBeCloseTo(0.5, 9);
  });

  test('a counter that goes back (a new cgroup under the same path) counts nothing, then counts from there', () => {
    h.cg.v2('/train/job_11', 9_000_000, 0, 0);
    h.fake.set(800, { ppid: 1, starttime: OLD, cgroup: V2('/train/job_11') });
    h.tracker.register({ id: '11', name: 'eleven', cgroup: '/train/job_11' });
    h.cg.v2('/train/job_11', 1_000_000, 0, 0);
    expect(h.step().get('11')!.cpuSeconds).toBe(0);
    h.cg.v2('/train/job_11', 1_250_000, 0, 0);
    expect(h.step().get('11')!.cpuSeconds).toBeCloseTo(0.25, 9);
  });

  test('a job given by PIDs as well as a cgroup is counted by its processes', () => {
    h.cg.v2('/train/job_12', 0, 0, 0);
    h.fake.set(900, { ppid: 1, starttime: OLD, utime: 0, cgroup: V2('/train/job_12') });
    h.tracker.register({ id: '12', name: 'twelve', cgroup: '/train/job_12', pids: [900] });
    h.step();
    h.cg.v2('/train/job_12', 7_000_000, 0, 0);
    h.fake.update(900, { utime: 30 });
    expect(h.step().get('12')!.cpuSeconds).toBeCloseTo(0.3, 9);
  });

  test('a Kubernetes pod found from its cgroup path is counted by the pod’s cgroup', () => {
    const k = new Harness({ slurm: false, kubernetes: true, env: false });
    try {
      const pod = '/kubepods/burstable/pod3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff';
      k.cg.v2(pod, 1_000_000, 0, 0);
      k.fake.set(300, { ppid: 1, starttime: OLD, utime: 5, cgroup: V2(`${pod}/c1`) });
      k.fake.set(301, { ppid: 1, starttime: OLD, utime: 5, cgroup: V2(`${pod}/c2`) });
      k.step(); // discovered: the first reading of its cgroup is the baseline
      const id = '3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff';
      expect(k.tracker.get(id)?.cgroup).toBe(pod);
      k.cg.v2(pod, 1_750_000, 100, 0);
      k.fake.update(300, { utime: 500 });
      const u = k.step().get(id)!;
      expect(u.cpuSeconds).toBeCloseTo(0.75, 9);
      expect(u.ioBytes).toBe(100);
    } finally {
      k.cleanup();
    }
  });

  test('a job given by PID inside a discovered pod keeps its children; the pod, not alone in its cgroup, is counted by its processes', () => {
    const k = new Harness({ slurm: false, kubernetes: true, env: false });
    try {
      const pod = '/kubepods/burstable/pod3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff';
      k.cg.v2(pod, 0, 0, 0);
      k.fake.set(300, { ppid: 1, starttime: OLD, utime: 0, cgroup: V2(`${pod}/c1`) });
      k.fake.set(310, { ppid: 300, starttime: OLD + 1, utime: 0, cgroup: V2(`${pod}/c1`) }); // `jouleflow run`'s command
      k.fake.set(311, { ppid: 310, starttime: OLD + 2, utime: 0, cgroup: V2(`${pod}/c1`) }); // its worker
      k.tracker.register({ id: 'run', name: 'run', pids: [310] });
      k.step();
      k.step();
      const pod_ = '3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff';
      expect([...k.tracker.membership()].sort()).toEqual([
        [300, pod_],
        [310, 'run'],
        [311, 'run'],
      ]);
      k.cg.v2(pod, 6_000_000, 0, 0); // all three processes' CPU
      k.fake.update(300, { utime: 100 });
      k.fake.update(311, { utime: 500 });
      const u = k.step();
      expect(u.get(pod_)!.cpuSeconds).toBeCloseTo(1, 9);
      expect(u.get('run')!.cpuSeconds).toBeCloseTo(5, 9);
    } finally {
      k.cleanup();
    }
  });
});
