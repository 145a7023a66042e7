import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { JobTracker, type TrackerOptions } from '../../exporter/src/jobs/tracker';
import { silentLogger } from '../../exporter/src/util/log';
import type { JobUsage } from '../../exporter/src/model/attribution';
import { Ledger } from '../../exporter/src/jobs/ledger';
import { FakeProcfs } from './fakeproc';

/** The tracker on fake procfs trees: membership, CPU/io deltas (exits, reuse, no negatives), discovery. */

const BOOT_MS = 1_700_000_000_000;
/** Uptime at the test's start: 1000 s = 100 000 ticks. */
const T0 = 1000;

class Harness {
  readonly fake = new FakeProcfs();
  uptimeS = T0;
  readonly registry: JobTracker;
  constructor(extra: Partial<TrackerOptions> = {}) {
    this.registry = new JobTracker({
      procfs: this.fake.root,
      log: silentLogger,
      clock: () => this.now,
      liveCap: 100,
      retentionMs: 60_000,
      checkpointMs: 1000,
      carbon: { zone: 'test' },
      discovery: { slurm: true, kubernetes: true, env: true },
      ...extra,
    });
  }
  get now(): number {
    return BOOT_MS + this.uptimeS * 1000;
  }
  /** Advances time by `s` seconds and measures. */
  step(s = 1, gpu: Parameters<JobTracker['measure']>[1] = []): Map<string, JobUsage> {
    this.uptimeS += s;
    this.fake.uptime(this.uptimeS);
    return new Map(this.registry.measure(this.now, gpu).map((u) => [u.id, u]));
  }
  cleanup(): void {
    this.fake.cleanup();
  }
}

const OLD = 50_000; // starttime (ticks) of processes born long before the test's jobs

describe('process trees and CPU time', () => {
  let h: Harness;
  beforeEach(() => (h = new Harness()));
  afterEach(() => h.cleanup());

  it('finds descendants of a root and counts only CPU used after the job started', () => {
    h.fake.set(1, { ppid: 0, starttime: 1 });
    h.fake.set(100, { ppid: 1, utime: 500, stime: 100, starttime: OLD });
    h.fake.set(101, { ppid: 100, utime: 50, starttime: OLD + 1 });
    h.fake.set(102, { ppid: 101, utime: 7, starttime: OLD + 2 });
    h.fake.set(200, { ppid: 1, utime: 999, starttime: OLD });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    const u1 = h.step();
    expect(u1.get('a')?.cpuSeconds).toBe(0); // baseline: history before the job is not the job's
    expect([...h.registry.membership()].sort()).toEqual([
      [100, 'a'],
      [101, 'a'],
      [102, 'a'],
    ]);
    h.fake.update(100, { utime: 530, stime: 110 }); // +40
    h.fake.update(101, { utime: 75 }); // +25
    h.fake.update(200, { utime: 5000 }); // not a member
    const u2 = h.step();
    expect(u2.get('a')?.cpuSeconds).toBeCloseTo(0.65, 10);
  });

  it('with full scans every 3 ticks: members are read every tick, a child forked meanwhile counts from its birth', () => {
    const sparse = new Harness({ fullScanEvery: 3 });
    try {
      sparse.fake.set(1, { ppid: 0, starttime: 1 });
      sparse.fake.set(100, { ppid: 1, utime: 500, starttime: OLD });
      sparse.registry.register({ id: 'a', name: 'A', pids: [100] });
      let cpu = 0;
      sparse.step(); // full (a new job): baseline of 100
      const born = (sparse.uptimeS + 0.5) * 100;
      sparse.fake.update(100, { utime: 510 }); // +10 ticks
      sparse.fake.set(101, { ppid: 100, utime: 30, starttime: born }); // forked after the scan
      for (let i = 0; i < 3; i++) cpu += sparse.step().get('a')?.cpuSeconds ?? 0;
      expect(sparse.registry.membership().get(101)).toBe('a');
      // 10 ticks of the root + all 30 of the child (born in the job): nothing lost by scanning less often.
      expect(cpu).toBeCloseTo(0.4, 10);
    } finally {
      sparse.cleanup();
    }
  });

  it('skips a due scan while /proc/loadavg says no process came or went, and scans at least once a minute', () => {
    const quiet = new Harness({ fullScanEvery: 1 });
    const loadavg = (entities: number, lastPid: number) =>
      fs.writeFileSync(path.join(quiet.fake.root, 'loadavg'), `0.10 0.20 0.30 ${1 + (lastPid % 3)}/${entities} ${lastPid}\n`);
    try {
      quiet.fake.set(1, { ppid: 0, starttime: 1 });
      quiet.fake.set(100, { ppid: 1, starttime: OLD });
      loadavg(2, 100);
      quiet.registry.register({ id: 'a', name: 'A', pids: [100] });
      quiet.step(); // the jobs changed: a scan
      quiet.step(); // the confirming re-read of the processes it found
      // A child appears in procfs but loadavg does not move (the runnable count aside): no scan.
      quiet.fake.set(101, { ppid: 100, starttime: OLD + 1 });
      loadavg(2, 100);
      quiet.step();
      expect(quiet.registry.membership().has(101)).toBe(false);
      // The fork shows in loadavg (a new last PID, one more entity): the next due scan finds it.
      loadavg(3, 101);
      quiet.step();
      expect(quiet.registry.membership().get(101)).toBe('a');
      quiet.step(); // 101's confirming re-read
      // Nothing moves for a minute: a scan still comes, within 60 ticks.
      quiet.fake.set(102, { ppid: 100, starttime: OLD + 2 });
      let ticks = 0;
      while (!quiet.registry.membership().has(102) && ticks < 100) {
        quiet.step();
        ticks++;
      }
      expect(ticks).toBeGreaterThan(1);
      expect(ticks).toBeLessThanOrEqual(60);
    } finally {
      quiet.cleanup();
    }
  });

  it('recovers the last interval of a child that exits through the parent cutime, never twice', () => {
    h.fake.set(100, { ppid: 1, utime: 10, starttime: OLD });
    h.fake.set(101, { ppid: 100, utime: 100, cutime: 0, starttime: OLD + 5 });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    h.step();
    h.fake.update(101, { utime: 150 }); // +50
    expect(h.step().get('a')?.cpuSeconds).toBeCloseTo(0.5, 10);
    // The child burns 30 more ticks, exits and is reaped: the parent's cutime grows by its total (180).
    h.fake.remove(101);
    h.fake.update(100, { utime: 12, cutime: 180 });
    // Counted: parent +2, child's unseen 180 − 150 = 30.
    expect(h.step().get('a')?.cpuSeconds).toBeCloseTo(0.32, 10);
    h.fake.update(100, { utime: 13 });
    expect(h.step().get('a')?.cpuSeconds).toBeCloseTo(0.01, 10);
  });

  it('a parent that reaps its child and exits in the same interval: the child is not counted twice (reaper)', () => {
    // `jouleflow run -- sh -c 'python train.py'`: the reaper (50) waits for sh (100), which waited for python (101).
    h.fake.set(50, { ppid: 1, utime: 1, starttime: OLD - 10 });
    h.fake.set(100, { ppid: 50, utime: 10, starttime: OLD });
    h.fake.set(101, { ppid: 100, utime: 100, starttime: OLD + 5 });
    h.registry.register({ id: 'a', name: 'A', pids: [100], reaperPid: 50 });
    h.step();
    h.fake.update(101, { utime: 150 }); // +50
    expect(h.step().get('a')?.cpuSeconds).toBeCloseTo(0.5, 10);
    // python burns 30 more ticks and is reaped by sh (cutime 180); sh burns 2 more and is reaped by 50.
    h.fake.remove(101);
    h.fake.remove(100);
    h.fake.update(50, { cutime: 12 + 180 });
    // Counted: sh +2, python's unseen 30.
    expect(h.step().get('a')?.cpuSeconds).toBeCloseTo(0.32, 10);
  });

  it('a parent that reaps its child and exits in the same interval: the child is not counted twice (grandparent)', () => {
    h.fake.set(99, { ppid: 1, utime: 5, starttime: OLD - 10 });
    h.fake.set(100, { ppid: 99, utime: 10, starttime: OLD });
    h.fake.set(101, { ppid: 100, utime: 100, writeBytes: 1000, starttime: OLD + 5 });
    h.registry.register({ id: 'a', name: 'A', pids: [99] });
    h.step();
    h.fake.update(101, { utime: 150, writeBytes: 1500 }); // +50 ticks, +500 bytes
    const u = h.step().get('a');
    expect(u?.cpuSeconds).toBeCloseTo(0.5, 10);
    expect(u?.ioBytes).toBe(500);
    h.fake.remove(101);
    h.fake.remove(100);
    // 101: +30 ticks, +100 bytes unseen; 100: +2 ticks; both reaped up to 99.
    h.fake.update(99, { cutime: 12 + 180, writeBytes: 1600 });
    const last = h.step().get('a');
    expect(last?.cpuSeconds).toBeCloseTo(0.32, 10);
    expect(last?.ioBytes).toBe(100);
  });

  it('a start given far in the past does not pour CPU used before registration into one interval', () => {
    // Born 30 min ago with 1000 s of CPU since; registered now with a start an hour ago.
    h.fake.set(100, { ppid: 1, utime: 100_000, starttime: (T0 - 1800) * 100 });
    h.registry.register({ id: 'a', name: 'A', pids: [100], start: h.now - 3_600_000 });
    expect(h.step().get('a')?.cpuSeconds).toBe(0); // baseline
    h.fake.update(100, { utime: 100_050 });
    expect(h.step().get('a')?.cpuSeconds).toBeCloseTo(0.5, 10);
    expect(h.registry.get('a')?.startTime).toBeCloseTo((h.now - 3_602_000) / 1000, 6); // the start is kept
    // `jouleflow run`: the command spawned a moment before its registration counts from birth.
    h.fake.set(200, { ppid: 1, utime: 40, starttime: (h.uptimeS - 2) * 100 });
    h.registry.register({ id: 'b', name: 'B', pids: [200], start: h.now - 2000 });
    expect(h.step().get('b')?.cpuSeconds).toBeCloseTo(0.4, 10);
  });

  it('counts a child born during the interval from zero, and never goes negative', () => {
    h.fake.set(100, { ppid: 1, utime: 10, starttime: OLD });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    h.step();
    // born 0.5 s ago (uptime is T0 + 1 s now; the next step is at T0 + 2 s)
    h.fake.set(103, { ppid: 100, utime: 20, stime: 5, starttime: (T0 + 1.5) * 100 });
    expect(h.step().get('a')?.cpuSeconds).toBeCloseTo(0.25, 10);
    h.fake.update(103, { utime: 0, stime: 0 }); // a counter going backwards: nothing, not negative
    expect(h.step().get('a')?.cpuSeconds).toBe(0);
  });

  it('treats a reused PID as a new process', () => {
    h.fake.set(100, { ppid: 1, utime: 10, starttime: OLD });
    h.fake.set(101, { ppid: 100, utime: 100, starttime: OLD + 5 });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    h.step();
    // 101 exits unseen-reaped by an outsider, and an unrelated process gets PID 101.
    h.fake.set(101, { ppid: 1, utime: 3, starttime: (T0 + 0.5) * 100 });
    h.step();
    expect(h.registry.membership().get(101)).toBeUndefined();
  });

  it('storage bytes: read + write − cancelled, children recovered like CPU', () => {
    h.fake.set(100, { ppid: 1, readBytes: 1000, writeBytes: 5000, starttime: OLD });
    h.fake.set(101, { ppid: 100, writeBytes: 100, starttime: OLD + 1 });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    h.step();
    h.fake.update(100, { readBytes: 1500, writeBytes: 9000, cancelledWriteBytes: 1000 }); // +500 +4000 −1000
    h.fake.update(101, { writeBytes: 400 }); // +300
    expect(h.step().get('a')?.ioBytes).toBe(3800);
    h.fake.remove(101); // wrote 100 more before exiting: the parent's io includes its 500
    h.fake.update(100, { writeBytes: 9000 + 500 });
    expect(h.step().get('a')?.ioBytes).toBe(100);
  });

  it("a later process that gets the root's PID is not the job", () => {
    h.fake.set(100, { ppid: 1, starttime: OLD });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    h.step();
    expect(h.registry.membership().get(100)).toBe('a');
    h.fake.set(100, { ppid: 1, utime: 500, starttime: (T0 + 1.5) * 100 }); // the root exited; PID reused
    h.step();
    expect(h.registry.membership().get(100)).toBeUndefined();
  });

  it('ends a pid job when all its processes are gone', () => {
    h.fake.set(100, { ppid: 1, starttime: OLD });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    h.step();
    h.fake.remove(100);
    h.step();
    h.registry.record(
      { t: h.now, dt: 1, series: [], events: [] },
      { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } },
    );
    expect(h.registry.get('a')?.state).toBe('ended');
  });

  it('a `jouleflow run` job outlives its processes for 10 s: its wrapper reports the final work and ends it', () => {
    const idle = { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } };
    const record = () => h.registry.record({ t: h.now, dt: 1, series: [], events: [] }, idle);
    h.fake.set(100, { ppid: 1, starttime: OLD });
    h.fake.set(200, { ppid: 1, starttime: OLD });
    h.registry.register({ id: 'r', name: 'R', pids: [100], labels: { scheduler: 'jouleflow-run' } });
    h.registry.register({ id: 'w', name: 'W', pids: [200], labels: { scheduler: 'jouleflow-run' } });
    h.step();
    h.fake.remove(100);
    h.fake.remove(200);
    for (let s = 0; s < 9; s++) {
      h.step();
      record();
    }
    expect(h.registry.get('r')?.state).toBe('running');
    // The wrapper's final work report is still taken, then it ends the job itself.
    h.registry.registry.workOf('r');
    void h.registry.end('r');
    record();
    expect(h.registry.get('r')?.state).toBe('ended');
    // A wrapper that died: the job ends 10 s after its processes, without it.
    expect(h.registry.get('w')?.state).toBe('running');
    h.step(2);
    record();
    expect(h.registry.get('w')?.state).toBe('ended');
  });
});

describe('discovery', () => {
  let h: Harness;
  let mapDir: string;
  beforeEach(() => {
    mapDir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-hpc-'));
    h = new Harness({ discovery: { slurm: true, kubernetes: true, env: true, hpcMappingDir: mapDir } });
  });
  afterEach(() => {
    h.cleanup();
    fs.rmSync(mapDir, { recursive: true, force: true });
  });

  it('Slurm (cgroup v1 and v2), Kubernetes (cgroupfs and systemd drivers) and JOULEFLOW_JOB', () => {
    const v1 =
      '12:memory:/slurm/uid_1000/job_4242/step_0/task_0\n11:cpuset:/slurm/uid_1000/job_4242/step_0\n1:name=systemd:/system.slice/slurmd.service\n';
    h.fake.set(300, { ppid: 1, cgroup: v1, starttime: OLD });
    h.fake.set(301, { ppid: 1, cgroup: '0::/system.slice/slurmstepd.scope/job_77/step_batch/user/task_0\n', starttime: OLD });
    h.fake.set(302, {
      ppid: 1,
      cgroup: '4:memory:/kubepods/burstable/pod3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff/0123456789ab\n',
      starttime: OLD,
    });
    h.fake.set(303, {
      ppid: 1,
      cgroup:
        '0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11111111_2222_3333_4444_555555555555.slice/cri-containerd-abc.scope\n',
      starttime: OLD,
    });
    h.fake.set(304, { ppid: 1, environ: { PATH: '/bin', JOULEFLOW_JOB: 'train-42' }, starttime: OLD });
    h.fake.set(305, { ppid: 304, starttime: OLD + 1 }); // child of an env job, no env of its own
    h.fake.set(306, { ppid: 1, environ: { JOULEFLOW_JOB: 'bad id with spaces' }, starttime: OLD });
    h.step();
    const m = h.registry.membership();
    expect(m.get(300)).toBe('4242');
    expect(m.get(301)).toBe('77');
    expect(m.get(302)).toBe('3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff');
    expect(m.get(303)).toBe('11111111-2222-3333-4444-555555555555');
    expect(m.get(304)).toBe('train-42');
    expect(m.get(305)).toBe('train-42');
    expect(m.get(306)).toBeUndefined();
    const byId = new Map(h.registry.list().jobs.map((j) => [j.id, j]));
    expect(byId.get('4242')).toMatchObject({ scheduler: 'slurm', user: '1000' });
    expect(byId.get('77')?.scheduler).toBe('slurm');
    expect(byId.get('3f6e2a10-1b2c-4d5e-8f90-aabbccddeeff')?.scheduler).toBe('kubernetes');
    expect(byId.get('train-42')?.scheduler).toBe('env');
  });

  it('a discovered job refused at the live-job cap is taken once the cap frees', () => {
    const c = new Harness({ liveCap: 1 });
    try {
      const end = () =>
        c.registry.record(
          { t: c.now, dt: 1, series: [], events: [] },
          { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } },
        );
      c.fake.set(300, { ppid: 1, starttime: OLD, cgroup: '0::/system.slice/slurmstepd.scope/job_1/step_0/user/task_0\n' });
      c.step();
      end();
      c.fake.set(301, { ppid: 1, starttime: OLD, cgroup: '0::/system.slice/slurmstepd.scope/job_2/step_0/user/task_0\n' });
      c.step();
      end();
      expect(c.registry.membership().get(301)).toBeUndefined(); // over the cap
      c.fake.remove(300); // job 1 ends
      c.step();
      end();
      expect(c.registry.get('1')?.state).toBe('ended');
      c.step();
      end();
      expect(c.registry.membership().get(301)).toBe('2');
      expect(c.registry.get('2')?.state).toBe('running');
    } finally {
      c.cleanup();
    }
  });

  it('a process that exec()s with JOULEFLOW_JOB right after fork is caught on the next tick', () => {
    h.fake.set(310, { ppid: 1, starttime: OLD });
    h.step();
    expect(h.registry.membership().get(310)).toBeUndefined();
    h.fake.update(310, { environ: { JOULEFLOW_JOB: 'late' } });
    h.step();
    h.step();
    expect(h.registry.membership().get(310)).toBe('late');
  });

  it('HPC job mapping files give jobs their GPUs; the GPU share follows', () => {
    fs.writeFileSync(path.join(mapDir, '0'), 'jobA\n');
    fs.writeFileSync(path.join(mapDir, '1'), '# comment\njobA\njobB\n');
    h.fake.set(400, { ppid: 1, starttime: OLD });
    h.fake.set(401, { ppid: 1, starttime: OLD });
    const gpu = [
      { device: 'gpu0', pid: 400, smUtilPercent: 60 },
      { device: 'gpu1', pid: 401, smUtilPercent: 30 },
    ];
    h.step(1, gpu);
    const u = h.step(1, gpu);
    const byId = new Map(h.registry.list().jobs.map((j) => [j.id, j]));
    expect(byId.get('jobA')?.gpus).toEqual(['0', '1']);
    expect(byId.get('jobB')?.gpus).toEqual(['1']);
    expect(u.get('jobA')?.gpuShares.gpu0).toBeCloseTo(1, 10);
    // 401 holds gpu1, which both jobs map: the first job naming that GPU claims it.
    expect(h.registry.membership().get(401)).toBe('jobA');
    fs.writeFileSync(path.join(mapDir, '1'), 'jobA\n');
    h.step(1, gpu);
    h.registry.record(
      { t: h.now, dt: 1, series: [], events: [] },
      { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } },
    );
    expect(h.registry.get('jobB')?.state).toBe('ended');
  });

  it('an unreadable HPC mapping directory ends no job (unknown is not empty)', () => {
    fs.writeFileSync(path.join(mapDir, '0'), 'jobA\n');
    h.step();
    expect(h.registry.get('jobA')?.state).toBe('running');
    const moved = mapDir + '.old';
    fs.renameSync(mapDir, moved); // e.g. replaced by its writer; gone for a moment
    try {
      h.step();
      h.registry.record(
        { t: h.now, dt: 1, series: [], events: [] },
        { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } },
      );
      expect(h.registry.get('jobA')?.state).toBe('running');
    } finally {
      fs.renameSync(moved, mapDir);
    }
    fs.rmSync(path.join(mapDir, '0')); // really gone from the mapping: ends
    h.step();
    h.registry.record(
      { t: h.now, dt: 1, series: [], events: [] },
      { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } },
    );
    expect(h.registry.get('jobA')?.state).toBe('ended');
  });

  it('an API cgroup job takes the processes under that cgroup (longest prefix wins)', () => {
    h.fake.set(500, { ppid: 1, cgroup: '0::/user.slice/train/a\n', starttime: OLD });
    h.fake.set(501, { ppid: 1, cgroup: '0::/user.slice/train/b/x\n', starttime: OLD });
    h.fake.set(502, { ppid: 1, cgroup: '0::/user.slice/trainee\n', starttime: OLD });
    h.registry.register({ id: 'all', name: 'all', cgroup: '/user.slice/train' });
    h.registry.register({ id: 'b', name: 'b', cgroup: '/user.slice/train/b/' });
    h.step();
    const m = h.registry.membership();
    expect(m.get(500)).toBe('all');
    expect(m.get(501)).toBe('b');
    expect(m.get(502)).toBeUndefined();
  });

  it("a job in its own network namespace gets that namespace's bytes (lo excluded)", () => {
    h.fake.set(600, { ppid: 1, netns: 'net:[4026532000]', netDev: { lo: { rx: 5, tx: 5 }, eth0: { rx: 1000, tx: 200 } }, starttime: OLD });
    h.fake.set(601, { ppid: 1, starttime: OLD });
    h.registry.register({ id: 'ns', name: 'ns', pids: [600] });
    h.registry.register({ id: 'host', name: 'host', pids: [601] });
    expect(h.step().get('ns')?.netnsBytes).toBe(0);
    h.fake.update(600, { netDev: { lo: { rx: 999, tx: 999 }, eth0: { rx: 1500, tx: 260 } } });
    const u = h.step();
    expect(u.get('ns')?.netnsBytes).toBe(560);
    expect(u.get('host')?.netnsBytes).toBeUndefined();
  });
});

describe('resuming from the ledger after kill -9', () => {
  it('jobs whose processes are gone end at their last checkpoint; cgroup and GPU jobs stay until ended', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jf-ledger-')), 'jobs.db');
    const h1 = new Harness({ ledger: new Ledger(file), discovery: { slurm: true, kubernetes: false, env: false } });
    const record = (h: Harness) =>
      h.registry.record(
        { t: h.now, dt: 1, series: [], events: [] },
        { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } },
      );
    h1.fake.set(100, { ppid: 1, starttime: OLD });
    h1.fake.set(101, { ppid: 1, starttime: OLD });
    h1.fake.set(300, { ppid: 1, starttime: OLD, cgroup: '0::/slurm/uid_1000/job_42/step_0/task_0\n' });
    h1.registry.register({ id: 'gone', name: 'g', pids: [100] });
    h1.registry.register({ id: 'alive', name: 'a', pids: [101] });
    h1.registry.register({ id: 'cg', name: 'c', cgroup: '/my/cgroup' });
    h1.step();
    record(h1); // checkpoint
    const checkpointMs = h1.now;
    // kill -9: no close(). Meanwhile 100 and the Slurm job's process exit.
    h1.fake.remove(100);
    h1.fake.remove(300);
    const h2 = new Harness({ ledger: new Ledger(file), discovery: { slurm: true, kubernetes: false, env: false } });
    h2.fake.set(101, { ppid: 1, starttime: OLD });
    h2.uptimeS = h1.uptimeS + 30;
    expect(h2.registry.resume()).toBe(4);
    h2.step();
    record(h2);
    expect(h2.registry.get('gone')).toMatchObject({ state: 'ended', endTime: checkpointMs / 1000 });
    expect(h2.registry.get('42')).toMatchObject({ state: 'ended', endTime: checkpointMs / 1000 });
    expect(h2.registry.get('alive')?.state).toBe('running');
    expect(h2.registry.get('cg')?.state).toBe('running');
    expect(h2.registry.membership().get(101)).toBe('alive');
    h1.cleanup();
    h2.cleanup();
  });
});

describe('a process stuck in D state', () => {
  let h: Harness;
  beforeEach(() => (h = new Harness()));
  afterEach(() => h.cleanup());

  it('its /proc/PID/environ read blocks (here: a FIFO nobody writes); usage() still returns and other jobs are measured', async () => {
    h.fake.set(1, { ppid: 0, starttime: 1 });
    h.fake.set(100, { ppid: 1, utime: 100, starttime: OLD });
    h.fake.set(400, { ppid: 1, environ: { JOULEFLOW_JOB: 'env-job' }, starttime: OLD });
    h.registry.register({ id: 'a', name: 'A', pids: [100] });
    // A blocking environ, like a process holding its mm lock in D state (reads hang, as in `ps`).
    const environ = path.join(h.fake.root, '200', 'environ');
    h.fake.set(200, { ppid: 1, utime: 5, starttime: OLD });
    fs.rmSync(environ);
    execFileSync('mkfifo', [environ]);
    const tick = async (): Promise<Map<string, JobUsage>> => {
      h.uptimeS += 1;
      h.fake.uptime(h.uptimeS);
      return new Map((await h.registry.usage(h.now, 1, [])).map((u) => [u.id, u]));
    };
    try {
      await tick();
      h.fake.update(100, { utime: 150 });
      const u = await tick();
      expect(u.get('a')?.cpuSeconds).toBeCloseTo(0.5, 9);
      // The environment of the other new process was read despite the blocked one.
      expect(h.registry.membership().get(400)).toBe('env-job');
    } finally {
      // Unblock the thread-pool read so the test process can exit.
      fs.writeFileSync(environ, 'PATH=/bin\0');
    }
  });
});
