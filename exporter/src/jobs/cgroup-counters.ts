import * as path from 'path';
import type { KernelFiles } from '../util/fs';
import type { Proc } from './process-table';

/**
 * A job's CPU time and storage bytes from its cgroup's own counters (docs/design.md, section 4):
 * two reads per job a tick, where reading its members costs two per process (a 20-process job: 40).
 * The kernel keeps these counters for the whole subtree, exited processes included, so no reaped
 * child is lost or counted twice.
 *
 *   cgroup v2 (pure, or the `unified` hierarchy of a hybrid mount): cpu.stat `usage_usec`;
 *     io.stat `rbytes` + `wbytes` of every device (present where the io controller is enabled).
 *   cgroup v1: cpuacct.usage (ns); blkio.throttle.io_service_bytes_recursive `Read` + `Write`.
 *
 * These are block-layer bytes; a process's /proc/PID/io read_bytes + write_bytes − cancelled counts
 * them when they are issued for it, so both count the same storage traffic, writeback included.
 */

/** Where a process sits in each hierarchy that keeps counters (from /proc/PID/cgroup). */
export interface CgroupPlaces {
  /** cgroup v2 ("0::/path"). */
  unified?: string;
  /** cgroup v1 cpuacct ("N:cpu,cpuacct:/path"). */
  cpuacct?: string;
  /** cgroup v1 blkio ("N:blkio:/path"). */
  blkio?: string;
}

export function cgroupPlaces(text: string): CgroupPlaces {
  const out: CgroupPlaces = {};
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const controllers = line.slice(a + 1, b).split(',');
    const p = line.slice(b + 1).trim();
    if (line.slice(0, a) === '0' && controllers[0] === '') out.unified = p;
    if (controllers.includes('cpuacct')) out.cpuacct = p;
    if (controllers.includes('blkio')) out.blkio = p;
  }
  return out;
}

/** The counter files of one cgroup, and which of a process's places must lie inside it. */
export interface CgroupCounterFiles {
  cpu: string;
  io: string;
  /** The hierarchies these files are in: a member must sit under the cgroup in each. */
  places: ReadonlyArray<keyof CgroupPlaces>;
  format: 'v2' | 'v1';
}

export interface CgroupReading {
  /** CPU time of every process in the subtree, ever (seconds). */
  cpuSeconds: number;
  /** Bytes read from and written to storage (bytes). */
  ioBytes: number;
}

/**
 * Finds the counter files of `cgroup` (a path as /proc/PID/cgroup shows it) under the cgroup mount
 * root (`--path.sysfs`/fs/cgroup): v2 first, then v1. Undefined when neither has both a CPU and an
 * I/O counter readable there.
 */
export function locateCgroupCounters(root: string, cgroup: string, files: KernelFiles): CgroupCounterFiles | undefined {
  const rel = cgroup === '/' ? '' : cgroup;
  const candidates: CgroupCounterFiles[] = [];
  for (const base of [root, path.join(root, 'unified')]) {
    candidates.push({ cpu: path.join(base, rel, 'cpu.stat'), io: path.join(base, rel, 'io.stat'), places: ['unified'], format: 'v2' });
  }
  for (const cpuacct of ['cpuacct', 'cpu,cpuacct']) {
    candidates.push({
      cpu: path.join(root, cpuacct, rel, 'cpuacct.usage'),
      io: path.join(root, 'blkio', rel, 'blkio.throttle.io_service_bytes_recursive'),
      places: ['cpuacct', 'blkio'],
      format: 'v1',
    });
  }
  return candidates.find((c) => readCgroupCounters(c, files) !== undefined);
}

export function readCgroupCounters(c: CgroupCounterFiles, files: KernelFiles): CgroupReading | undefined {
  const cpuText = files.textOrUndefined(c.cpu, 'latin1');
  const ioText = cpuText === undefined ? undefined : files.textOrUndefined(c.io, 'latin1');
  if (cpuText === undefined || ioText === undefined) return undefined;
  const cpuSeconds = c.format === 'v2' ? v2CpuSeconds(cpuText) : v1CpuSeconds(cpuText);
  const ioBytes = c.format === 'v2' ? v2IoBytes(ioText) : v1IoBytes(ioText);
  if (cpuSeconds === undefined || ioBytes === undefined) return undefined;
  return { cpuSeconds, ioBytes };
}

/** cpu.stat: "usage_usec 123" (µs) → seconds. */
export function v2CpuSeconds(text: string): number | undefined {
  const key = 'usage_usec ';
  const line = text.startsWith(key) ? 0 : text.indexOf('\n' + key);
  const v = numberAfter(text, line, line === 0 ? key.length : key.length + 1);
  return v === undefined ? undefined : v / 1e6;
}

/** cpuacct.usage: one number (ns) → seconds. */
export function v1CpuSeconds(text: string): number | undefined {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) / 1e9 : undefined;
}

/** io.stat: "8:0 rbytes=1 wbytes=2 rios=… dbytes=…" per device; empty when nothing was done yet. */
export function v2IoBytes(text: string): number | undefined {
  // Read every tick for every job: indexOf and charCode arithmetic, no regular expression or array.
  return sumAfter(text, ' rbytes=') + sumAfter(text, ' wbytes=');
}

/** blkio.throttle.io_service_bytes_recursive: "8:0 Read 1", "8:0 Write 2", …, "Total 3". */
export function v1IoBytes(text: string): number | undefined {
  return sumAfter(text, ' Read ') + sumAfter(text, ' Write ');
}

/** The decimal number at `at + skip`, or undefined (`at` < 0: the key was not found). */
function numberAfter(text: string, at: number, skip: number): number | undefined {
  if (at < 0) return undefined;
  let v = 0;
  let i = at + skip;
  const start = i;
  for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i)) v = v * 10 + (c - 48);
  return i > start ? v : undefined;
}

/** The sum of the numbers after every occurrence of `key`. */
function sumAfter(text: string, key: string): number {
  let sum = 0;
  for (let at = text.indexOf(key); at >= 0; at = text.indexOf(key, at + key.length)) sum += numberAfter(text, at, key.length) ?? 0;
  return sum;
}

/** Whether `place` is `cgroup` or inside it. */
export function within(place: string | undefined, cgroup: string): boolean {
  if (place === undefined) return false;
  return cgroup === '/' || place === cgroup || place.startsWith(cgroup + '/');
}

/** What the meter needs of a running job to decide how to count it. */
export interface CgroupJob {
  id: string;
  cgroup?: string;
  /** Counted by its processes whatever its cgroup: root PIDs, GPUs or a reaper name members outside it. */
  perProcess: boolean;
}

interface CgroupState {
  cgroup: string;
  files?: CgroupCounterFiles;
  last?: CgroupReading;
  /** Counted by its cgroup: its members are exactly the processes in it (decided at each membership change). */
  exact: boolean;
}

const PLACES: ReadonlyArray<keyof CgroupPlaces> = ['unified', 'cpuacct', 'blkio'];

/**
 * Chooses, per job with a cgroup, between its cgroup's counters and its members' (decide(), after
 * each membership change), and reads the cgroup counters every tick (read()). A job is counted by
 * its cgroup only when the counters cover exactly its members: every member sits inside the cgroup
 * in each hierarchy read, and no process of another job (or of none) does. Counters of every
 * located cgroup are read each tick, so a job that switches has a baseline from the last tick.
 */
export class CgroupMeter {
  private readonly jobs = new Map<string, CgroupState>();

  /** `root`: the cgroup mount (undefined: every job is counted by its processes). */
  constructor(
    private readonly root: string | undefined,
    private readonly files: KernelFiles,
  ) {}

  private state(id: string, cgroup: string): CgroupState {
    let s = this.jobs.get(id);
    if (!s || s.cgroup !== cgroup) {
      if (s) this.release(s);
      s = { cgroup, exact: false };
      this.jobs.set(id, s);
    }
    // Not there yet (a Slurm job's cgroup appears with its first step): looked for again next time.
    if (!s.files && this.root !== undefined) s.files = locateCgroupCounters(this.root, cgroup, this.files);
    return s;
  }

  /** Takes a job's baseline now (at registration): its cgroup's counting starts there. */
  baseline(job: CgroupJob): void {
    if (!this.eligible(job)) return;
    const s = this.state(job.id, job.cgroup!);
    if (s.files) s.last = readCgroupCounters(s.files, this.files);
  }

  private eligible(job: CgroupJob): boolean {
    return this.root !== undefined && job.cgroup !== undefined && job.cgroup !== '/' && !job.perProcess;
  }

  /**
   * After a membership change: which jobs are counted by their cgroup. Returns the jobs whose way
   * of counting changed (their members' own baselines are then stale and must be dropped).
   */
  decide(jobs: readonly CgroupJob[], procs: Iterable<Proc>): string[] {
    const byPath = new Map<string, { id: string; s: CgroupState; ok: boolean }>();
    const byId = new Map<string, { id: string; s: CgroupState; ok: boolean }>();
    for (const j of jobs) {
      if (!this.eligible(j)) continue;
      const s = this.state(j.id, j.cgroup!);
      if (!s.files) continue;
      const c = { id: j.id, s, ok: true };
      byPath.set(s.cgroup, c);
      byId.set(j.id, c);
    }
    if (byPath.size > 0) {
      for (const p of procs) {
        const own = p.job === undefined ? undefined : byId.get(p.job);
        if (own?.ok && !own.s.files!.places.every((pl) => within(p.cgroupPlaces?.[pl], own.s.cgroup))) own.ok = false;
        if (!p.cgroupPlaces) continue;
        for (const pl of PLACES) {
          // Every cgroup holding the process, walking up its path (a few map lookups, not one per job).
          for (let at = p.cgroupPlaces[pl]; at !== undefined && at.length > 1; at = parentOf(at)) {
            const c = byPath.get(at);
            if (c && c.id !== p.job && c.s.files!.places.includes(pl)) c.ok = false;
          }
        }
      }
    }
    const changed: string[] = [];
    for (const [id, s] of this.jobs) {
      const exact = byId.get(id)?.ok ?? false;
      if (exact !== s.exact) changed.push(id);
      s.exact = exact;
    }
    return changed;
  }

  /**
   * Reads every located cgroup; returns this tick's CPU seconds and I/O bytes of the jobs counted by
   * their cgroup, and in `lost` those that stopped being countable (the cgroup is gone).
   */
  read(): { deltas: Map<string, CgroupReading>; lost: string[] } {
    const deltas = new Map<string, CgroupReading>();
    const lost: string[] = [];
    for (const [id, s] of this.jobs) {
      if (!s.files) continue;
      const now = readCgroupCounters(s.files, this.files);
      const last = s.last;
      s.last = now;
      if (!now) {
        this.release(s);
        s.files = undefined;
        if (s.exact) lost.push(id);
        s.exact = false;
        continue;
      }
      if (!s.exact) continue;
      // A counter that went back is a new cgroup under the same path: a new baseline, nothing counted.
      const ok = last !== undefined && now.cpuSeconds >= last.cpuSeconds && now.ioBytes >= last.ioBytes;
      deltas.set(
        id,
        ok ? { cpuSeconds: now.cpuSeconds - last.cpuSeconds, ioBytes: now.ioBytes - last.ioBytes } : { cpuSeconds: 0, ioBytes: 0 },
      );
    }
    return { deltas, lost };
  }

  isCounting(id: string): boolean {
    return this.jobs.get(id)?.exact ?? false;
  }

  forget(id: string): void {
    const s = this.jobs.get(id);
    if (s) this.release(s);
    this.jobs.delete(id);
  }

  private release(s: CgroupState): void {
    if (!s.files) return;
    this.files.forget(s.files.cpu);
    this.files.forget(s.files.io);
  }
}

function parentOf(p: string): string | undefined {
  const i = p.lastIndexOf('/');
  return i > 0 ? p.slice(0, i) : undefined;
}
