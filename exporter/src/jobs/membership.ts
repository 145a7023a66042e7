import { envJob, kubernetesFromCgroup, slurmFromCgroup, slurmFromEnv, type DiscoveredJob } from './discovery';
import type { Proc } from './process-table';
import type { JobRecord } from './records';
import type { JobRegistry } from './registry';

/**
 * Which job a process belongs to (docs/design.md, section 4), by precedence:
 *   1. an explicit root PID of a running job (the same process: its start time matches);
 *   2. its own JOULEFLOW_JOB environment variable, then its own SLURM_JOB_ID (not the prolog's or
 *      epilog's: the process table leaves those out);
 *   3. an API job's cgroup (the longest matching prefix);
 *   4. its parent's job (a child started before its parent is a reused PID, not a child);
 *   5. the GPUs it holds, for jobs given by GPU;
 *   6. Slurm or Kubernetes cgroup paths (discovery).
 * A pure function of the process table and the rules; discovery is a callback that may create
 * the job it names (or refuse it) and returns its id.
 */

export interface MembershipRules {
  /** Root PID → its job and the start time it had at registration (−1: unknown). */
  roots: ReadonlyMap<number, { job: string; start: number }>;
  /** Running jobs with a cgroup, longest cgroup first. */
  cgroupJobs: ReadonlyArray<{ id: string; cgroup: string }>;
  isRunning(id: string): boolean;
  /** Resolves a discovered job to a running job id, creating it if the rules allow. */
  discover(d: DiscoveredJob, via: 'env' | 'slurm' | 'kubernetes'): string | undefined;
  discovery: { slurm: boolean; kubernetes: boolean };
}

export function jobOf(
  p: Proc,
  procs: ReadonlyMap<number, Proc>,
  rules: MembershipRules,
  memo: Map<number, string | undefined>,
  /** Processes being (re)classified; others keep their current job. Undefined: all. */
  fresh?: (p: Proc) => boolean,
  depth = 0,
): string | undefined {
  if (memo.has(p.pid)) return memo.get(p.pid);
  if (fresh && !fresh(p)) return p.job;
  memo.set(p.pid, undefined); // cycle guard
  const live = (id: string | undefined) => (id !== undefined && rules.isRunning(id) ? id : undefined);
  const root = rules.roots.get(p.pid);
  // A later process that got the root's PID is not the root.
  let job = root && !(root.start >= 0 && root.start !== p.starttime) ? root.job : undefined;
  if (job === undefined && p.envJob !== undefined) {
    const d = envJob(p.envJob);
    if (d) job = rules.discover(d, 'env');
  }
  if (job === undefined && p.slurmJob !== undefined) {
    const d = slurmFromEnv(p.slurmJob);
    if (d) job = rules.discover(d, 'slurm');
  }
  if (job === undefined && p.cgroups && rules.cgroupJobs.length) {
    const cgs = p.cgroups;
    job = rules.cgroupJobs.find((j) => j.cgroup === '/' || cgs.some((c) => c === j.cgroup || c.startsWith(j.cgroup + '/')))?.id;
  }
  if (job === undefined && depth < 512) {
    const parent = procs.get(p.ppid);
    if (parent && parent.starttime <= p.starttime) job = jobOf(parent, procs, rules, memo, fresh, depth + 1);
  }
  if (job === undefined) job = live(p.gpuJob);
  if (job === undefined && p.cgroups) {
    const d =
      (rules.discovery.slurm ? slurmFromCgroup(p.cgroups) : undefined) ??
      (rules.discovery.kubernetes ? kubernetesFromCgroup(p.cgroups) : undefined);
    if (d) job = rules.discover(d, d.scheduler === 'slurm' ? 'slurm' : 'kubernetes');
  }
  memo.set(p.pid, job);
  return job;
}

/**
 * Assigns jobs to `fresh` processes (all when undefined). A process joining a job starts from a
 * fresh counter baseline, or from zero when it was born during the job (all its time is the job's).
 */
export function assignJobs(
  fresh: readonly Proc[] | undefined,
  procs: ReadonlyMap<number, Proc>,
  rules: MembershipRules,
  bornInJob: (p: Proc, job: string) => boolean,
): void {
  if (fresh?.length === 0) return;
  const memo = new Map<number, string | undefined>();
  const set = fresh && new Set(fresh);
  for (const p of fresh ?? procs.values()) {
    const job = jobOf(p, procs, rules, memo, set && ((q) => set.has(q)));
    if (p.job === job) continue;
    p.job = job;
    p.cpu = p.child = p.io = undefined;
    p.pendingCpu = p.pendingIo = 0;
    if (job !== undefined && bornInJob(p, job)) p.cpu = p.child = p.io = 0;
  }
}

/** The rules of the running jobs in `registry`; discovery creates jobs there. */
export function membershipRules(registry: JobRegistry, discovery: MembershipRules['discovery']): MembershipRules {
  const running = [...registry.records()].filter((j) => j.end === undefined);
  const roots = running.flatMap((j) => [...j.roots].map((pid) => [pid, { job: j.id, start: j.rootStarts.get(pid) ?? -1 }] as const));
  // Rule 3 is for cgroups given through the API; a discovered job's cgroup (Slurm, a pod) is found by
  // rule 6, below a parent's job (a `jouleflow run` inside a pod keeps its command's processes).
  const cgroupJobs = running.flatMap((j) => (j.cgroup !== undefined && j.source === 'api' ? [{ id: j.id, cgroup: j.cgroup }] : []));
  return {
    roots: new Map(roots),
    cgroupJobs: cgroupJobs.sort((a, b) => b.cgroup.length - a.cgroup.length),
    isRunning: (id) => registry.job(id) !== undefined && registry.job(id)?.end === undefined,
    discover: (d, via) => {
      const known = registry.job(d.id);
      return known ? (known.end === undefined ? d.id : undefined) : registry.discovered(d, via)?.id;
    },
    discovery,
  };
}

/**
 * Whether a process joining `job` was born during it (then all its CPU time counts, from birth):
 * born after the job started (a tick of slack for the clock conversion), or during this interval.
 */
export function bornInJob(
  p: Proc,
  job: JobRecord | undefined,
  t: { uptime: number | undefined; prevUptime: number | undefined; now: number; hz: number },
): boolean {
  if (!job || t.uptime === undefined) return false;
  const bootMs = t.now - (t.uptime / t.hz) * 1000;
  const jobStartTicks = job.countFromTicks ?? (((job.bornAfterMs ?? job.start) - bootMs) / 1000) * t.hz;
  const prev = t.prevUptime;
  return p.starttime >= jobStartTicks - 1 || (prev !== undefined && p.starttime >= prev && p.starttime >= (job.countFromTicks ?? 0));
}
