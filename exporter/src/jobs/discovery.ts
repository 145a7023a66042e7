import * as fs from 'fs';
import * as path from 'path';
import { environValue } from '../util/procfs';

/**
 * Job discovery without any API call (docs/design.md, section 4): Slurm and Kubernetes from the cgroup paths in
 * /proc/PID/cgroup, the JOULEFLOW_JOB and SLURM_JOB_ID environment variables, and dcgm-exporter-style HPC job
 * mapping files (one file per GPU index listing the job ids using that GPU). Pure parsers plus
 * a directory reader; the tracker decides precedence.
 */

export interface DiscoveredJob {
  id: string;
  name: string;
  scheduler: 'slurm' | 'kubernetes' | 'env' | 'hpc';
  user?: string;
  /** The job's own cgroup, when found from a cgroup path (its counters can count the job). */
  cgroup?: string;
}

/** The cgroup paths of a /proc/PID/cgroup text (v1: one line per hierarchy; v2: "0::/path"). */
export function cgroupPaths(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) continue;
    const p = line.slice(b + 1).trim();
    if (p && !out.includes(p)) out.push(p);
  }
  return out;
}

// v1: /slurm/uid_1000/job_42/step_0/task_0 (also /slurm_<node>/uid_… with a NodeName prefix);
// v2: /system.slice/slurmstepd.scope/job_42/step_0/user/task_0.
const SLURM_V1 = /\/slurm[^/]*\/uid_(\d+)\/job_(\d+)(?:\/|$)/;
const SLURM_V2 = /\/slurmstepd\.scope\/job_(\d+)(?:\/|$)/;
// cgroupfs driver: /kubepods/burstable/pod<uid>/<container>; systemd driver:
// /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with _>.slice/cri-containerd-….scope
const K8S = /kubepods[^\n]*?pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})/;

/** The path up to the end of a match (the job's cgroup), without a trailing slash. */
function matched(p: string, m: RegExpExecArray): string {
  return p.slice(0, m.index + m[0].length).replace(/\/$/, '');
}

export function slurmFromCgroup(paths: readonly string[]): DiscoveredJob | undefined {
  for (const p of paths) {
    const m1 = SLURM_V1.exec(p);
    if (m1) return { id: m1[2], name: `slurm job ${m1[2]}`, scheduler: 'slurm', user: m1[1], cgroup: matched(p, m1) };
    const m2 = SLURM_V2.exec(p);
    if (m2) return { id: m2[1], name: `slurm job ${m2[1]}`, scheduler: 'slurm', cgroup: matched(p, m2) };
  }
  return undefined;
}

/**
 * SLURM_JOB_ID from a process environment: clusters with proctrack/linuxproc have no Slurm
 * cgroups, but every task (batch script, srun steps, array tasks) carries its job's id. Array
 * tasks have their own SLURM_JOB_ID (SLURM_ARRAY_JOB_ID is the array's), the same id their
 * cgroup path names, so both discoveries agree on one job.
 */
export function slurmFromEnv(value: string | undefined): DiscoveredJob | undefined {
  const v = value?.trim();
  if (!v || !/^\d{1,20}$/.test(v)) return undefined;
  return { id: v, name: `slurm job ${v}`, scheduler: 'slurm' };
}

export function kubernetesFromCgroup(paths: readonly string[]): DiscoveredJob | undefined {
  for (const p of paths) {
    const m = K8S.exec(p);
    if (m) {
      const uid = m[1].toLowerCase().replace(/_/g, '-');
      // The pod's cgroup ends at its path component: "pod<uid>" or "kubepods-…-pod<uid>.slice".
      const end = p.indexOf('/', m.index + m[0].length);
      return { id: uid, name: `pod ${uid}`, scheduler: 'kubernetes', cgroup: end < 0 ? p : p.slice(0, end) };
    }
  }
  return undefined;
}

/** Job ids are label values and URL path segments: printable, bounded, no slash. */
export const JOB_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$/;

export function envJob(value: string | undefined): DiscoveredJob | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (!JOB_ID_RE.test(v)) return undefined;
  return { id: v, name: v, scheduler: 'env' };
}

/** The job names a process's environment gives it, for the discoveries that are on. */
export interface EnvironJobs {
  /** JOULEFLOW_JOB. */
  envJob?: string;
  /** SLURM_JOB_ID, unless the process is Slurm's prolog or epilog. */
  slurmJob?: string;
}

export function environJobs(environ: string, discovery: { env: boolean; slurm: boolean }): EnvironJobs {
  return {
    envJob: discovery.env ? environValue(environ, 'JOULEFLOW_JOB') : undefined,
    // Slurm's prolog and epilog run with the job's SLURM_JOB_ID too, and SLURM_SCRIPT_CONTEXT: they
    // are not the job (found first, the job would end with them and never reopen).
    slurmJob:
      discovery.slurm && environValue(environ, 'SLURM_SCRIPT_CONTEXT') === undefined ? environValue(environ, 'SLURM_JOB_ID') : undefined,
  };
}

/**
 * Reads an HPC job mapping directory (dcgm-exporter --hpc-job-mapping-dir): files named by GPU
 * index, each listing job ids, one per line (blank lines and # comments ignored).
 * Returns job id → GPU indexes, or undefined when the directory cannot be read (unknown, which
 * is not the same as "no jobs").
 */
export function readHpcMapping(dir: string): Map<string, number[]> | undefined {
  const out = new Map<string, number[]>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, n), 'utf8');
    } catch {
      continue;
    }
    for (const raw of text.split('\n')) {
      const id = raw.trim();
      if (!id || id.startsWith('#') || !JOB_ID_RE.test(id)) continue;
      const gpus = out.get(id) ?? [];
      if (!gpus.includes(Number(n))) gpus.push(Number(n));
      out.set(id, gpus);
    }
  }
  for (const g of out.values()) g.sort((a, b) => a - b);
  return out;
}
