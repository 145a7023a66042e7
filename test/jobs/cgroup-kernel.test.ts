import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { setTimeout as sleep } from 'timers/promises';
import { locateCgroupCounters } from '../../exporter/src/jobs/cgroup-counters';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import { silentLogger } from '../../exporter/src/util/log';
import { parseProcPidStat } from '../../exporter/src/util/procfs';

/**
 * A job counted by a real kernel cgroup: a busy process moved into a cgroup made for the test (v1
 * cpuacct on a hybrid mount, or v2), against the CPU time the
 * kernel reports for the process itself in /proc/PID/stat, read around each measurement. Needs
 * root and a writable cgroup mount; skipped, saying why, where the machine has neither.
 */

const ROOT = '/sys/fs/cgroup';
const NAME = `/jouleflow-test-${process.pid}`;
const HZ = 100;

function removeCgroups(dirs: string[]): void {
  for (const d of dirs) {
    try {
      fs.rmdirSync(d); // a cgroup directory goes with rmdir, once no process is left in it
    } catch {
      // not made, or already gone
    }
  }
}

/** The directories made for the test, or why none could be. */
function makeCgroup(): { dirs: string[] } | { why: string } {
  const pureV2 = fs.existsSync(path.join(ROOT, 'cgroup.controllers'));
  const dirs = pureV2 ? [path.join(ROOT, NAME)] : [path.join(ROOT, 'cpuacct', NAME)];
  try {
    for (const d of dirs) fs.mkdirSync(d);
  } catch (err) {
    removeCgroups(dirs);
    return { why: `cannot make a cgroup under ${ROOT}: ${(err as Error).message}` };
  }
  if (!locateCgroupCounters(ROOT, NAME)) {
    removeCgroups(dirs);
    return { why: `no CPU counter for a new cgroup under ${ROOT}` };
  }
  return { dirs };
}

const made = makeCgroup();
const maybe = 'dirs' in made ? describe : describe.skip;
if (!('dirs' in made)) console.warn(`cgroup-kernel: skipped: ${made.why}`);

function cpuSecondsOf(pid: number): number {
  return parseProcPidStat(fs.readFileSync(`/proc/${pid}/stat`, 'latin1'))!.cpuTicks / HZ;
}

maybe('a job counted by a kernel cgroup', () => {
  let busy: ChildProcess | undefined;
  afterAll(async () => {
    if (busy && busy.exitCode === null && busy.signalCode === null) {
      const exited = new Promise((resolve) => busy!.once('exit', resolve));
      busy.kill('SIGKILL');
      await exited;
    }
    if ('dirs' in made) {
      // The kernel empties a cgroup shortly after its last process is reaped.
      for (let i = 0; i < 100 && made.dirs.some((d) => fs.existsSync(d)); i++) {
        removeCgroups(made.dirs);
        await sleep(50);
      }
    }
  });

  test('its CPU time is the process’s own, read from the cgroup (ns, not clock ticks)', async () => {
    busy = spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' });
    const pid = busy.pid!;
    for (const d of (made as { dirs: string[] }).dirs) fs.writeFileSync(path.join(d, 'cgroup.procs'), String(pid));
    const tracker = new JobTracker({
      procfs: '/proc',
      cgroups: { sysfs: '/sys', disksExclude: /^(loop|dm-|md)\d*/ },
      log: silentLogger,
      liveCap: 100,
      retentionMs: 60_000,
      checkpointMs: 60_000,
      carbon: { zone: 'test' },
      discovery: { slurm: false, kubernetes: false, env: false },
    });
    try {
      tracker.register({ id: 'kernel-cg', name: 'kernel cgroup', cgroup: NAME });
      const around = () => {
        const before = cpuSecondsOf(pid);
        const u = tracker.measure(Date.now(), []).find((x) => x.id === 'kernel-cg')!;
        return { before, u, after: cpuSecondsOf(pid) };
      };
      around(); // membership is decided at the first measurement
      let total = 0;
      const first = around();
      for (let i = 0; i < 3; i++) {
        await sleep(400);
        const m = around();
        total += m.u.cpuSeconds;
        if (i === 2) {
          // The cgroup's counter moved exactly as much as the process's own CPU time, within one
          // clock tick at each end (the stat file counts in ticks).
          expect(total).toBeGreaterThanOrEqual(m.before - first.after - 2 / HZ);
          expect(total).toBeLessThanOrEqual(m.after - first.before + 2 / HZ);
          expect(total).toBeGreaterThan(0);
        }
      }
      expect(tracker.registry.job('kernel-cg')?.members).toBe(1);
      // Nanoseconds from cpuacct.usage / usage_usec: not a whole number of clock ticks (per-process
      // counting would give one).
      expect(Math.abs(total * HZ - Math.round(total * HZ))).toBeGreaterThan(1e-6);
    } finally {
      tracker.close();
    }
  }, 30_000);
});
