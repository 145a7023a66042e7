import * as path from 'path';
import { cgroupPlaces, type CgroupPlaces } from './cgroup-counters';
import { cgroupPaths, environJobs } from './discovery';
import { PENDING, type EnvironReader } from './environ-reader';
import { KernelFiles } from '../util/fs';
import { descriptorBudget, listPids, parseProcPidStat, pidPath, readFileOrUndefined, readLinkOrUndefined } from '../util/procfs';

/**
 * The process table (docs/design.md, section 4): what jobs need to know of each process on the node,
 * from one procfs tree (`--path.procfs`): identity (start time, parent, cgroups, JOULEFLOW_JOB, SLURM_JOB_ID),
 * its job, and the counter baselines the usage meter keeps on it. A full scan (one readdir,
 * then stat, cgroup and environ of new processes only) finds new processes and exits.
 */

export interface Proc {
  pid: number;
  /** PROCFS/PID/, the prefix of the files read every tick. */
  dir: string;
  ppid: number;
  starttime: number;
  kernel: boolean;
  cgroups?: string[];
  /** Its place in the hierarchies that keep CPU and I/O counters (jobs/cgroup-counters.ts). */
  cgroupPlaces?: CgroupPlaces;
  envJob?: string;
  /** SLURM_JOB_ID from its environment (discovery without Slurm cgroups). */
  slurmJob?: string;
  /** Remaining re-reads of cgroup and environ (a fresh fork may move or exec right after). */
  confirm: number;
  gpuJob?: string;
  job?: string;
  /** Last readings; undefined = no baseline yet. */
  cpu?: number;
  child?: number;
  io?: number;
  /** CPU ticks / io bytes of reaped children already counted, subtracted from the next deltas. */
  pendingCpu: number;
  pendingIo: number;
  pendingAge: number;
  netns?: string;
}

export interface ScanResult {
  /** Processes gone since the last scan, children before parents (still in the table: the usage meter retires them). */
  exited: Proc[];
  /** Processes seen for the first time. */
  fresh: Proc[];
  /** A known process's cgroup, JOULEFLOW_JOB or SLURM_JOB_ID changed (a fork that moved or exec'd). */
  identityChanged: boolean;
}

export class ProcessTable {
  readonly procs = new Map<number, Proc>();
  /**
   * Members' stat and io, read every tick through kept descriptors (a pread each instead of
   * open/read/close). A kept /proc/PID descriptor stays bound to its process: once the process has
   * exited its read fails, so a reused PID is never read through it.
   */
  readonly counters = new KernelFiles(descriptorBudget());
  /** Environment reads off the event loop, when the tracker prefetched them this tick. */
  envLookup: EnvironReader | undefined;

  constructor(
    readonly procfs: string,
    private readonly opts: { needCgroups: () => boolean; environ: { env: boolean; slurm: boolean } },
  ) {}

  /** The host's network namespace (processes in another one have their own interfaces). */
  hostNetns(): string | undefined {
    return readLinkOrUndefined(path.join(this.procfs, '1/ns/net')) ?? readLinkOrUndefined(path.join(this.procfs, 'self/ns/net'));
  }

  /** A process's start time (clock ticks after boot), or undefined when it does not exist. */
  startOf(pid: number): number | undefined {
    return parseProcPidStat(readFileOrUndefined(pidPath(this.procfs, pid, 'stat')) ?? '')?.starttime;
  }

  /** Reads a process not in the table yet and adds it. */
  add(pid: number): Proc | undefined {
    const st = parseProcPidStat(readFileOrUndefined(pidPath(this.procfs, pid, 'stat')) ?? '');
    if (!st) return undefined;
    const p: Proc = {
      pid,
      dir: path.join(this.procfs, String(pid)) + path.sep,
      ppid: st.ppid,
      starttime: st.starttime,
      kernel: pid === 2 || st.ppid === 2,
      confirm: 1,
      pendingCpu: 0,
      pendingIo: 0,
      pendingAge: 0,
    };
    this.readIdentity(p);
    this.procs.set(pid, p);
    return p;
  }

  /** cgroup paths, JOULEFLOW_JOB and SLURM_JOB_ID, as far as permitted. */
  readIdentity(p: Proc): void {
    if (p.kernel) return;
    if (this.opts.needCgroups()) this.readCgroups(p);
    if (this.readsEnviron) {
      const env = this.envLookup ? this.envLookup.lookup(p.pid) : readFileOrUndefined(pidPath(this.procfs, p.pid, 'environ'));
      if (env !== undefined && env !== PENDING) this.setEnviron(p, env);
    }
  }

  private readCgroups(p: Proc): void {
    const text = readFileOrUndefined(pidPath(this.procfs, p.pid, 'cgroup'));
    if (text === undefined) return;
    p.cgroups = cgroupPaths(text);
    p.cgroupPlaces = cgroupPlaces(text);
  }

  /** Whether environments are read at all (JOULEFLOW_JOB or SLURM_JOB_ID discovery). */
  get readsEnviron(): boolean {
    return this.opts.environ.env || this.opts.environ.slurm;
  }

  /** Applies a process's environment; true when the job it names changed. */
  setEnviron(p: Proc, environ: string): boolean {
    const { envJob, slurmJob } = environJobs(environ, this.opts.environ);
    const changed = envJob !== p.envJob || slurmJob !== p.slurmJob;
    p.envJob = envJob;
    p.slurmJob = slurmJob;
    return changed;
  }

  /** PIDs under the procfs root now. */
  pids(): number[] {
    return listPids(this.procfs);
  }

  /** One readdir (or its result): exits, new processes, and the confirming re-read of last scan's new ones. */
  scan(pids = this.pids()): ScanResult {
    const current = new Set(pids);
    const exited: Proc[] = [];
    for (const [pid, p] of this.procs) if (!current.has(pid)) exited.push(p);
    // Children before their parents: a parent that waited for a child and exited in the same
    // interval passes what was counted of that child on to its own reaper.
    if (exited.length > 1) exited.sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);
    const fresh: Proc[] = [];
    let identityChanged = false;
    // Cgroups are read only while a job needs them: processes seen before the first such job get theirs now.
    const needCgroups = this.opts.needCgroups();
    for (const pid of pids) {
      const known = this.procs.get(pid);
      if (known) {
        if (needCgroups && known.cgroups === undefined && !known.kernel) {
          this.readCgroups(known);
          if (known.cgroups !== undefined) identityChanged = true;
        }
        if (known.confirm > 0) {
          known.confirm--;
          const before = identityOf(known);
          this.readIdentity(known);
          if (identityOf(known) !== before) identityChanged = true;
        }
        continue;
      }
      const p = this.add(pid);
      if (p) fresh.push(p);
    }
    return { exited, fresh, identityChanged };
  }

  /** Drops a process that left (the usage meter has retired it) and releases its descriptors. */
  remove(p: Proc): void {
    this.procs.delete(p.pid);
    this.counters.forget(p.dir + 'stat');
    this.counters.forget(p.dir + 'io');
  }

  close(): void {
    this.counters.close();
  }

  netnsOf(p: Proc): string | undefined {
    if (p.netns === undefined) p.netns = readLinkOrUndefined(pidPath(this.procfs, p.pid, 'ns/net'));
    return p.netns;
  }
}

/** What membership reads of a process besides its parent: a change means reclassifying. */
function identityOf(p: Proc): string {
  return `${p.envJob}|${p.slurmJob}|${p.cgroups?.join(',')}`;
}
