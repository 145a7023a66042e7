import * as path from 'path';
import * as fs from 'fs';
import type { KernelFiles } from '../util/fs';
import type { Proc } from './process-table';

/**
 * A job's CPU time, and on cgroup v2 its storage bytes, from its cgroup's own counters
 * (docs/design.md, section 4): one or two reads per job a tick, where reading its members costs two
 * per process (a 20-process job: 40). The kernel keeps these counters for the whole subtree, exited
 * processes included, so no reaped child is lost or counted twice.
 *
 *   CPU: cgroup v2 (pure, or the `unified` hierarchy of a hybrid mount) cpu.stat `usage_usec`;
 *     v1 cpuacct.usage (ns).
 *   Storage: v2 io.stat `rbytes` + `wbytes` (where the io controller is on), of the disks the
 *     storage source counts: a device-mapper, md or other stacked device lists the same bytes as the
 *     disks beneath it, so those are left out by the same `disks.exclude` rule. v2 charges buffered
 *     writeback to the cgroup that dirtied the pages, as /proc/PID/io's write_bytes does. v1 blkio
 *     charges it to the root cgroup (a checkpoint written through the page cache would be missed),
 *     so on v1, and on v2 without io.stat, the members' /proc/PID/io still count storage.
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
  /** v2 io.stat; undefined when the members' /proc/PID/io count storage (v1, or no io controller). */
  io?: string;
  /** The hierarchies these files are in: a member must sit under the cgroup in each. */
  places: ReadonlyArray<keyof CgroupPlaces>;
  format: 'v2' | 'v1';
}

export interface CgroupReading {
  /** CPU time of every process in the subtree, ever (seconds). */
  cpuSeconds: number;
  /** Bytes read from and written to the counted disks (bytes); undefined without io.stat. */
  ioBytes?: number;
}

/** Which block devices ("MAJ:MIN") count as storage, as the storage source's `disks.exclude` decides. */
export type CountedDevice = (majMin: string) => boolean;

/**
 * The devices to count: a device's name from sysfs (/sys/dev/block/MAJ:MIN → …/sda), kept per
 * device; one whose name cannot be found is counted (a disk).
 */
export function countedDevices(sysfs: string, exclude: RegExp): CountedDevice {
  const known = new Map<string, boolean>();
  return (majMin) => {
    let counted = known.get(majMin);
    if (counted === undefined) {
      let name: string | undefined;
      try {
        name = path.basename(fs.readlinkSync(path.join(sysfs, 'dev/block', majMin)));
      } catch {
        name = undefined;
      }
      counted = name === undefined || !exclude.test(name);
      known.set(majMin, counted);
    }
    return counted;
  };
}

/**
 * Finds the counter files of `cgroup` (a path as /proc/PID/cgroup shows it) under the cgroup mount
 * root (`--path.sysfs`/fs/cgroup): v2 first, then v1. Undefined when no CPU counter is readable.
 * Candidates are opened without keeping descriptors; only the chosen files are kept, by the reads.
 */
export function locateCgroupCounters(root: string, cgroup: string): CgroupCounterFiles | undefined {
  const rel = cgroup === '/' ? '' : cgroup;
  const readable = (file: string) => {
    try {
      fs.accessSync(file, fs.constants.R_OK);
      return true;
    } catch {
      return false;
    }
  };
  for (const base of [root, path.join(root, 'unified')]) {
    const cpu = path.join(base, rel, 'cpu.stat');
    if (!readable(cpu)) continue;
    const io = path.join(base, rel, 'io.stat');
    return { cpu, io: readable(io) ? io : undefined, places: ['unified'], format: 'v2' };
  }
  for (const cpuacct of ['cpuacct', 'cpu,cpuacct']) {
    const cpu = path.join(root, cpuacct, rel, 'cpuacct.usage');
    if (readable(cpu)) return { cpu, places: ['cpuacct'], format: 'v1' };
  }
  return undefined;
}

export function readCgroupCounters(c: CgroupCounterFiles, files: KernelFiles, counted: CountedDevice): CgroupReading | undefined {
  const cpuText = files.textOrUndefined(c.cpu, 'latin1', true);
  if (cpuText === undefined) return undefined;
  const cpuSeconds = c.format === 'v2' ? v2CpuSeconds(cpuText) : v1CpuSeconds(cpuText);
  if (cpuSeconds === undefined) return undefined;
  if (c.io === undefined) return { cpuSeconds };
  const ioText = files.textOrUndefined(c.io, 'latin1', true);
  return ioText === undefined ? undefined : { cpuSeconds, ioBytes: v2IoBytes(ioText, counted) };
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

/**
 * io.stat: "8:0 rbytes=1 wbytes=2 rios=… dbytes=…", one line per device (none before any I/O):
 * rbytes + wbytes of the counted devices. Read every tick for every job: indexOf and charCode
 * arithmetic, no regular expression.
 */
export function v2IoBytes(text: string, counted: CountedDevice = () => true): number {
  let sum = 0;
  for (let start = 0; start < text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const space = text.indexOf(' ', start);
    if (space > start && space < end && counted(text.slice(start, space))) {
      const line = text.slice(space, end);
      sum +=
        (numberAfter(line, line.indexOf(' rbytes='), ' rbytes='.length) ?? 0) +
        (numberAfter(line, line.indexOf(' wbytes='), ' wbytes='.length) ?? 0);
    }
    start = end + 1;
  }
  return sum;
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
  /** Registered before its cgroup existed (a Slurm prolog's job): everything the cgroup counts is the job's. */
  fromZero: boolean;
  /** Counted by its cgroup: its members are exactly the processes in it (decided at each membership change). */
  exact: boolean;
}

const PLACES: ReadonlyArray<keyof CgroupPlaces> = ['unified', 'cpuacct'];

/**
 * Chooses, per job with a cgroup, between its cgroup's counters and its members' (decide(), after
 * each membership change), and reads the cgroup counters every tick (read()). A job is counted by
 * its cgroup only when the counters cover exactly its members: every member sits inside the cgroup
 * in the hierarchy read, and no process of another job (or of none) does. Counters of every
 * located cgroup are read each tick, so a job that switches has a baseline from the last tick.
 */
export class CgroupMeter {
  private readonly jobs = new Map<string, CgroupState>();

  /** `root`: the cgroup mount (undefined: every job is counted by its processes). */
  constructor(
    private readonly root: string | undefined,
    private readonly files: KernelFiles,
    private readonly counted: CountedDevice,
  ) {}

  private state(id: string, cgroup: string): CgroupState {
    let s = this.jobs.get(id);
    if (!s || s.cgroup !== cgroup) {
      if (s) this.release(s);
      s = { cgroup, exact: false, fromZero: false };
      this.jobs.set(id, s);
    }
    // Not there yet (a Slurm job's cgroup appears with its first step): looked for again next time.
    if (!s.files && this.root !== undefined) {
      s.files = locateCgroupCounters(this.root, cgroup);
      if (s.files && s.fromZero) s.last = { cpuSeconds: 0, ioBytes: s.files.io === undefined ? undefined : 0 };
    }
    return s;
  }

  /**
   * Takes a job's baseline now (at registration): its cgroup's counting starts there, or at zero
   * when the cgroup does not exist yet (made for the job after it was registered).
   */
  baseline(job: CgroupJob): void {
    if (!this.eligible(job)) return;
    const s = this.state(job.id, job.cgroup!);
    if (s.files) s.last = readCgroupCounters(s.files, this.files, this.counted);
    else s.fromZero = true;
  }

  private eligible(job: CgroupJob): boolean {
    return this.root !== undefined && job.cgroup !== undefined && job.cgroup !== '/' && !job.perProcess;
  }

  /**
   * After a membership change: which jobs are counted by their cgroup. Returns the jobs whose way
   * of counting changed (their members' own baselines are then stale and must be dropped). Forgets
   * jobs that no longer run.
   */
  decide(jobs: readonly CgroupJob[], procs: Iterable<Proc>): string[] {
    const byPath = new Map<string, { id: string; s: CgroupState; ok: boolean }>();
    const byId = new Map<string, { id: string; s: CgroupState; ok: boolean }>();
    for (const j of jobs) {
      if (!this.eligible(j)) continue;
      const s = this.state(j.id, j.cgroup!);
      if (!s.files) continue;
      const c = { id: j.id, s, ok: true };
      const same = byPath.get(s.cgroup);
      // Two jobs given the same cgroup: its counters are neither's alone.
      if (same) same.ok = c.ok = false;
      else byPath.set(s.cgroup, c);
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
    const running = new Set(jobs.map((j) => j.id));
    const changed: string[] = [];
    for (const [id, s] of this.jobs) {
      if (!running.has(id)) {
        this.forget(id);
        continue;
      }
      const exact = byId.get(id)?.ok ?? false;
      if (exact !== s.exact) changed.push(id);
      s.exact = exact;
    }
    return changed;
  }

  /**
   * Reads every located cgroup; returns this tick's CPU seconds and I/O bytes (undefined: its
   * members' count) of the jobs counted by their cgroup, and in `lost` those that stopped being
   * countable (the cgroup is gone).
   */
  read(): { deltas: Map<string, CgroupReading>; lost: string[] } {
    const deltas = new Map<string, CgroupReading>();
    const lost: string[] = [];
    for (const [id, s] of this.jobs) {
      if (!s.files) continue;
      const now = readCgroupCounters(s.files, this.files, this.counted);
      const last = s.last;
      s.last = now;
      if (!now) {
        this.release(s);
        s.files = undefined;
        s.fromZero = false;
        if (s.exact) lost.push(id);
        s.exact = false;
        continue;
      }
      if (!s.exact) continue;
      // A counter that went back is a new cgroup under the same path: a new baseline, nothing counted.
      const cpu = last !== undefined && now.cpuSeconds >= last.cpuSeconds ? now.cpuSeconds - last.cpuSeconds : 0;
      let io: number | undefined;
      if (now.ioBytes !== undefined) io = last?.ioBytes !== undefined && now.ioBytes >= last.ioBytes ? now.ioBytes - last.ioBytes : 0;
      deltas.set(id, { cpuSeconds: cpu, ioBytes: io });
    }
    return { deltas, lost };
  }

  forget(id: string): void {
    const s = this.jobs.get(id);
    if (s) this.release(s);
    this.jobs.delete(id);
  }

  private release(s: CgroupState): void {
    if (!s.files) return;
    this.files.forget(s.files.cpu);
    if (s.files.io !== undefined) this.files.forget(s.files.io);
  }
}

function parentOf(p: string): string | undefined {
  const i = p.lastIndexOf('/');
  return i > 0 ? p.slice(0, i) : undefined;
}
