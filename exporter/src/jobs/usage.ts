import type { GpuProcess } from '../core';
import type { JobUsage } from '../model/attribution';
import { CgroupMeter, type CgroupJob, type CountedDevice } from './cgroup-counters';
import { gpuShares } from './gpu-shares';
import type { Proc, ProcessTable } from './process-table';
import { parseNetDevBytes, parseProcPidIo, parseProcPidStat, pidPath, readFileOrUndefined } from '../util/procfs';

/**
 * What each job did in an interval (docs/design.md, section 4): CPU time and storage bytes of its member
 * processes since their last reading, the CPU time of children they reaped meanwhile (counted
 * once: what was counted of a child while it ran is subtracted from its reaper's next delta),
 * its share of each GPU in this tick, and the bytes through its own network namespace. A job
 * whose cgroup holds exactly its members is counted by the cgroup's counters instead
 * (jobs/cgroup-counters.ts): two reads a tick instead of two per member.
 */

export interface UsageJob {
  id: string;
  /** A process whose waited-for children's CPU time belongs to this job (`jouleflow run`). */
  reaperPid?: number;
  cgroup?: string;
  roots?: ReadonlySet<number>;
  gpus?: readonly string[];
}

/** The GPU shares of a job on no GPU this tick (most jobs on most nodes): one object, never written. */
const NO_GPU_SHARES: Record<string, number> = Object.freeze({}) as Record<string, number>;

function cgroupJob(j: UsageJob): CgroupJob {
  return { id: j.id, cgroup: j.cgroup, perProcess: j.reaperPid !== undefined || (j.roots?.size ?? 0) > 0 || (j.gpus?.length ?? 0) > 0 };
}

export class UsageMeter {
  /** Running jobs by reaper pid, rebuilt each tick: exits are many, jobs with a reaper few. */
  private reapers = new Map<number, string[]>();
  private readonly reaperPending = new Map<string, number>();
  private readonly reaperLast = new Map<string, number>();
  private readonly netnsLast = new Map<string, number>();
  private readonly hostNetns: string | undefined;
  private readonly cgroups: CgroupMeter;

  /**
   * `cgroupRoot`: the cgroup mount, for jobs counted by their cgroup (undefined: none is);
   * `counted`: the block devices whose bytes count as storage there.
   */
  constructor(
    private readonly table: ProcessTable,
    cgroupRoot?: string,
    counted: CountedDevice = () => true,
  ) {
    this.hostNetns = table.hostNetns();
    this.cgroups = new CgroupMeter(cgroupRoot, table.counters, counted);
  }

  /** A job just registered: its cgroup's counting starts now. */
  registered(job: UsageJob): void {
    this.cgroups.baseline(cgroupJob(job));
  }

  /** After a membership change: which jobs their cgroup counts (see CgroupMeter.decide). */
  decideCounting(jobs: readonly UsageJob[]): void {
    this.dropBaselines(this.cgroups.decide(jobs.map(cgroupJob), this.table.procs.values()));
  }

  /**
   * A job changed how it is counted: its members' own baselines are stale (a switch back to them
   * must not count again what the cgroup counted), so each starts afresh at its next reading.
   */
  private dropBaselines(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const set = new Set(ids);
    for (const p of this.table.procs.values()) {
      if (p.job === undefined || !set.has(p.job)) continue;
      p.cpu = p.child = p.io = undefined;
      p.pendingCpu = p.pendingIo = 0;
    }
  }

  /** Sets this tick's jobs with a reaper (before exits are retired). */
  setReapers(jobs: Iterable<UsageJob>): void {
    this.reapers = new Map();
    for (const j of jobs) if (j.reaperPid !== undefined) this.reapers.set(j.reaperPid, [...(this.reapers.get(j.reaperPid) ?? []), j.id]);
  }

  /** Forgets an ended job's reaper state. */
  forget(id: string): void {
    this.reaperPending.delete(id);
    this.reaperLast.delete(id);
    this.cgroups.forget(id);
  }

  /**
   * Removes a process that left. Its parent's cutime/cstime and io now include its totals (it was
   * reaped): what we counted of it, including what it had not yet subtracted of its own reaped
   * children, is subtracted from the parent's next deltas.
   */
  retire(p: Proc): void {
    this.table.remove(p);
    // CPU and io are followed apart: a member of a job whose cgroup counts its CPU has io only.
    const parent = this.table.procs.get(p.ppid);
    const reaped = parent !== undefined && parent.starttime <= p.starttime;
    if (reaped && p.io !== undefined) {
      parent.pendingIo += p.io + p.pendingIo;
      parent.pendingAge = 0;
    }
    if (p.cpu === undefined) return;
    const counted = p.cpu + (p.child ?? 0) + p.pendingCpu;
    if (reaped) {
      parent.pendingCpu += counted;
      parent.pendingAge = 0;
    }
    for (const id of this.reapers.get(p.ppid) ?? []) this.reaperPending.set(id, (this.reaperPending.get(id) ?? 0) + counted);
  }

  /** Per running job: CPU ticks, io bytes, members and GPU shares, plus own-namespace network bytes. */
  measure(jobs: readonly UsageJob[], gpuProcesses: readonly GpuProcess[], hz: number): Array<JobUsage & { members: number }> {
    const acc = new Map<string, { cpu: number; io: number; members: number; sample?: Proc }>();
    for (const j of jobs) acc.set(j.id, { cpu: 0, io: 0, members: 0 });
    const { deltas, lost } = this.cgroups.read();
    this.dropBaselines(lost);
    for (const [id, d] of deltas) {
      const a = acc.get(id);
      if (!a) continue;
      a.cpu += d.cpuSeconds * hz;
      a.io += d.ioBytes ?? 0;
    }
    // No copy of the table: retire() deletes only the entry being visited, which a Map allows.
    for (const p of this.table.procs.values()) {
      if (p.job === undefined) continue;
      const a = acc.get(p.job);
      if (!a) continue;
      const byCgroup = deltas.get(p.job);
      if (byCgroup) {
        // Its CPU is counted by its cgroup: a member, its stat not read (an exit shows at the next
        // full scan); its io read here unless the cgroup counts that too.
        a.members++;
        if (!a.sample || p.pid < a.sample.pid) a.sample = p;
        // A process that did not run did no I/O (read_bytes and write_bytes are charged to the task
        // that runs the read or dirties the page, a reaped child's to its parent when it waits): in
        // an interval where the cgroup used no CPU at all, its members' io files are not read.
        if (byCgroup.ioBytes === undefined && (byCgroup.cpuSeconds > 0 || p.io === undefined)) {
          a.io += this.readIo(p);
          if (p.pendingIo > 0 && ++p.pendingAge > 3) p.pendingIo = 0; // as in readCounters()
        }
        // A parent in a job counted by its processes will find this one's CPU in its cutime once it
        // reaps it: this one's own counters are kept (not counted) so retire() can subtract them.
        const parent = this.table.procs.get(p.ppid);
        if (parent?.job !== undefined && parent.job !== p.job && !deltas.has(parent.job)) this.readCounters(p);
        continue;
      }
      const d = this.readCounters(p);
      if (!d) continue;
      a.cpu += d.cpu;
      a.io += d.io;
      a.members++;
      if (!a.sample || p.pid < a.sample.pid) a.sample = p;
    }
    for (const j of jobs) if (j.reaperPid !== undefined) acc.get(j.id)!.cpu += this.readReaper(j.id, j.reaperPid);
    const shares = gpuShares(gpuProcesses, (pid) => this.table.procs.get(pid)?.job);
    const out: Array<JobUsage & { members: number }> = [];
    const nsJobs = new Map<string, { ids: string[]; pid: number }>();
    for (const [id, a] of acc) {
      let byDevice: Record<string, number> = NO_GPU_SHARES;
      for (const [device, s] of shares) {
        const v = s.byJob.get(id);
        if (!v) continue;
        if (byDevice === NO_GPU_SHARES) byDevice = {};
        byDevice[device] = v;
      }
      out.push({ id, cpuSeconds: a.cpu / hz, ioBytes: a.io, gpuShares: byDevice, members: a.members });
      const ns = a.sample && this.table.netnsOf(a.sample);
      if (a.sample && ns !== undefined && this.hostNetns !== undefined && ns !== this.hostNetns) {
        const e = nsJobs.get(ns) ?? { ids: [], pid: a.sample.pid };
        e.ids.push(id);
        nsJobs.set(ns, e);
      }
    }
    // Own network namespaces: bytes through their interfaces (lo excluded), split among their jobs.
    for (const [ns, { ids, pid }] of nsJobs) {
      const text = readFileOrUndefined(pidPath(this.table.procfs, pid, 'net/dev'));
      if (text === undefined) continue;
      const bytes = parseNetDevBytes(text);
      const last = this.netnsLast.get(ns);
      this.netnsLast.set(ns, bytes);
      const delta = last !== undefined && bytes >= last ? bytes - last : 0;
      for (const u of out) if (ids.includes(u.id)) u.netnsBytes = delta / ids.length;
    }
    if (this.netnsLast.size > nsJobs.size) for (const ns of this.netnsLast.keys()) if (!nsJobs.has(ns)) this.netnsLast.delete(ns);
    return out;
  }

  private readReaper(id: string, pid: number): number {
    const st = parseProcPidStat(readFileOrUndefined(pidPath(this.table.procfs, pid, 'stat')) ?? '');
    if (!st) return 0;
    const last = this.reaperLast.get(id);
    this.reaperLast.set(id, st.childTicks);
    if (last === undefined) return 0;
    const d = Math.max(0, st.childTicks - last);
    const pending = this.reaperPending.get(id) ?? 0;
    this.reaperPending.set(id, Math.max(0, pending - d));
    return Math.max(0, d - pending);
  }

  /**
   * Storage bytes of one member since its last reading (0 on the first, or when it cannot be read),
   * less what its reaped children had been counted for. Read alone (a job whose cgroup counts its
   * CPU), a process that exited is retired by the next full scan.
   */
  private readIo(p: Proc): number {
    const ioNow = parseProcPidIo(this.table.counters.textOrUndefined(p.dir + 'io', 'latin1', true) ?? '');
    if (ioNow === undefined) return 0;
    let io = 0;
    if (p.io !== undefined) {
      const d = ioNow - p.io;
      if (d >= 0) {
        io = Math.max(0, d - p.pendingIo);
        p.pendingIo = Math.max(0, p.pendingIo - d);
      }
    }
    if (p.io === undefined || ioNow >= p.io) p.io = ioNow;
    return io;
  }

  /** CPU ticks and io bytes of one member since its last reading (0 on the first). */
  private readCounters(p: Proc): { cpu: number; io: number } | undefined {
    const { counters } = this.table;
    const st = parseProcPidStat(counters.textOrUndefined(p.dir + 'stat', 'latin1', true) ?? '');
    if (!st || st.starttime !== p.starttime) {
      // Gone, or its PID reused since we looked: the old process is retired, a new one is found by the next scan.
      this.retire(p);
      return undefined;
    }
    let cpu = 0;
    if (p.cpu !== undefined && p.child !== undefined) {
      const own = st.cpuTicks - p.cpu;
      const kids = st.childTicks - p.child;
      const fromKids = Math.max(0, kids - p.pendingCpu);
      p.pendingCpu = Math.max(0, p.pendingCpu - Math.max(0, kids));
      cpu = Math.max(0, own) + fromKids;
    }
    const io = this.readIo(p);
    // Pending amounts are consumed at the parent's next readings; stale ones (a parent that does
    // not wait for its children) are dropped after a few ticks.
    if (p.pendingCpu > 0 || p.pendingIo > 0) {
      if (++p.pendingAge > 3) p.pendingCpu = p.pendingIo = 0;
    }
    p.cpu = st.cpuTicks;
    p.child = st.childTicks;
    return { cpu, io };
  }
}
