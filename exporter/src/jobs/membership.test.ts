import type { DiscoveredJob } from './discovery';
import { jobOf, type MembershipRules } from './membership';
import type { Proc } from './process-table';

/**
 * The precedence rule as a table: each row is one process (and its parent) and the job it must
 * land in, by the order docs/design.md (section 4) gives. Discovery records what it was asked.
 */

function proc(pid: number, p: Partial<Proc> = {}): Proc {
  return {
    pid,
    dir: `/proc/${pid}/`,
    ppid: 1,
    starttime: 1000,
    kernel: false,
    confirm: 0,
    pendingCpu: 0,
    pendingIo: 0,
    pendingAge: 0,
    ...p,
  };
}

function rules(over: Partial<MembershipRules> = {}): MembershipRules & { asked: string[] } {
  const asked: string[] = [];
  return {
    roots: new Map([[10, { job: 'root-job', start: 1000 }]]),
    cgroupJobs: [{ id: 'cg-job', cgroup: '/custom/train' }],
    isRunning: (id) => id !== 'ended-job',
    discover: (d: DiscoveredJob, via) => {
      asked.push(`${via}:${d.id}`);
      return d.id;
    },
    discovery: { slurm: true, kubernetes: true },
    asked,
    ...over,
  };
}

const SLURM_CG = ['/slurm/uid_1000/job_77/step_0'];
const PARENT = 20;

const table: Array<[string, Partial<Proc>, Partial<Proc> | undefined, string | undefined, string[]]> = [
  // [case, process, its parent (pid 20), expected job, discoveries asked]
  ['root PID wins over everything', { pid: 10, envJob: 'env-a', slurmJob: '5', cgroups: ['/custom/train'] }, undefined, 'root-job', []],
  ['a later process with the root PID is not the root', { pid: 10, starttime: 2000 }, undefined, undefined, []],
  ['JOULEFLOW_JOB before SLURM_JOB_ID', { envJob: 'env-a', slurmJob: '5' }, undefined, 'env-a', ['env:env-a']],
  ['SLURM_JOB_ID before an API cgroup', { slurmJob: '5', cgroups: ['/custom/train'] }, undefined, '5', ['slurm:5']],
  ['SLURM_JOB_ID before the parent', { slurmJob: '5', ppid: PARENT }, { envJob: 'env-p' }, '5', ['slurm:5']],
  ['SLURM_JOB_ID before a Slurm cgroup (same job either way)', { slurmJob: '77', cgroups: SLURM_CG }, undefined, '77', ['slurm:77']],
  ['SLURM_JOB_ID that is not a number: next rules', { slurmJob: 'abc', cgroups: SLURM_CG }, undefined, '77', ['slurm:77']],
  ['API cgroup before the parent', { cgroups: ['/custom/train/rank0'], ppid: PARENT }, { envJob: 'env-p' }, 'cg-job', []],
  ['the parent (with SLURM_JOB_ID) before own GPUs', { ppid: PARENT, gpuJob: 'gpu-job' }, { slurmJob: '9' }, '9', ['slurm:9']],
  ['a child born before its parent is a reused PID', { ppid: PARENT, starttime: 500 }, { slurmJob: '9' }, undefined, []],
  ['GPUs before Slurm/Kubernetes cgroups', { gpuJob: 'gpu-job', cgroups: SLURM_CG }, undefined, 'gpu-job', []],
  ['GPUs of an ended job: next rules', { gpuJob: 'ended-job', cgroups: SLURM_CG }, undefined, '77', ['slurm:77']],
  [
    'Kubernetes cgroup',
    { cgroups: ['/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/c1'] },
    undefined,
    '11111111-2222-3333-4444-555555555555',
    ['kubernetes:11111111-2222-3333-4444-555555555555'],
  ],
  ['nothing: no job', {}, undefined, undefined, []],
];

it.each(table)('%s', (_case, p, parent, expected, asked) => {
  const self = proc(p.pid ?? 30, p);
  const procs = new Map<number, Proc>([[self.pid, self]]);
  if (parent) procs.set(PARENT, proc(PARENT, parent));
  const r = rules();
  expect(jobOf(self, procs, r, new Map())).toBe(expected);
  expect(r.asked).toEqual(asked);
});

it('a refused discovery (over the cap, or ended) leaves the process to the next rules', () => {
  const self = proc(30, { slurmJob: '5', cgroups: ['/custom/train'] });
  const r = rules({ discover: () => undefined });
  expect(jobOf(self, new Map([[30, self]]), r, new Map())).toBe('cg-job');
});
