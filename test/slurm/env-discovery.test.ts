import { ExpositionRenderer } from '../../exporter/src/exposition';
import { Ledger } from '../../exporter/src/jobs/ledger';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import { EMPTY_SNAPSHOT } from '../../exporter/src/snapshot';
import { silentLogger } from '../../exporter/src/util/log';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakeProcfs } from '../jobs/fakeproc';

/**
 * Slurm discovery from SLURM_JOB_ID in /proc/PID/environ (no Slurm cgroups, proctrack/linuxproc)
 * on a fake procfs tree, and the registry's metadata hooks: onJobAdded announces each new job,
 * describe() puts the scheduler's name and user into jouleflow_job_info (through the snapshot)
 * and, with its labels, into the ledger row.
 */

const OLD = 50_000;

function setup(discovery = { slurm: true, kubernetes: true, env: true }, ledger?: Ledger) {
  const fake = new FakeProcfs();
  let uptime = 1000;
  const clock = () => 1_700_000_000_000 + uptime * 1000;
  const registry = new JobTracker({
    procfs: fake.root,
    log: silentLogger,
    clock,
    ledger,
    liveCap: 100,
    retentionMs: 60_000,
    checkpointMs: 1000,
    carbon: { zone: 'test' },
    discovery,
  });
  const step = () => {
    uptime += 1;
    fake.uptime(uptime);
    return registry.measure(clock(), []);
  };
  return { fake, registry, step };
}

it('a process with SLURM_JOB_ID is in that Slurm job, with its children; JOULEFLOW_JOB takes precedence', () => {
  const { fake, registry, step } = setup();
  const added: Array<{ id: string; scheduler: string }> = [];
  registry.registry.onJobAdded = (j) => added.push(j);
  fake.set(400, { ppid: 1, environ: { SLURM_JOB_ID: '1234', SLURM_ARRAY_JOB_ID: '1200', PATH: '/bin' }, starttime: OLD });
  fake.set(401, { ppid: 400, starttime: OLD + 1 });
  fake.set(402, { ppid: 1, environ: { SLURM_JOB_ID: '1234', JOULEFLOW_JOB: 'inner-run' }, starttime: OLD });
  fake.set(403, { ppid: 1, environ: { SLURM_JOB_ID: 'not-a-number' }, starttime: OLD });
  // The prolog (run by slurmd with the job's id) is not the job.
  fake.set(404, { ppid: 1, environ: { SLURM_JOB_ID: '1235', SLURM_SCRIPT_CONTEXT: 'prolog_slurmd' }, starttime: OLD });
  step();
  const m = registry.membership();
  expect([m.get(400), m.get(401), m.get(402), m.get(403), m.get(404)]).toEqual(['1234', '1234', 'inner-run', undefined, undefined]);
  expect(registry.get('1235')).toBeUndefined();
  expect(registry.list().jobs.find((j) => j.id === '1234')).toMatchObject({ scheduler: 'slurm', name: 'slurm job 1234' });
  expect(added).toEqual(
    expect.arrayContaining([
      { id: '1234', scheduler: 'slurm' },
      { id: 'inner-run', scheduler: 'env' },
    ]),
  );
  fake.cleanup();
});

it('the same job from a cgroup path and from the environment is one job', () => {
  const { fake, registry, step } = setup();
  fake.set(500, { ppid: 1, cgroup: '4:freezer:/slurm_vm/uid_0/job_77/step_batch\n', starttime: OLD });
  fake.set(501, { ppid: 1, environ: { SLURM_JOB_ID: '77' }, starttime: OLD });
  step();
  expect(registry.list().jobs.filter((j) => j.id === '77')).toHaveLength(1);
  expect([registry.membership().get(500), registry.membership().get(501)]).toEqual(['77', '77']);
  fake.cleanup();
});

it('Slurm discovery off: SLURM_JOB_ID is ignored', () => {
  const { fake, registry, step } = setup({ slurm: false, kubernetes: false, env: true });
  fake.set(600, { ppid: 1, environ: { SLURM_JOB_ID: '9' }, starttime: OLD });
  step();
  expect(registry.membership().get(600)).toBeUndefined();
  fake.cleanup();
});

/** The jouleflow_job_info samples a renderer writes for the tracker's jobs now. */
function jobInfo(registry: JobTracker, version: number): string[] {
  const families = new ExpositionRenderer().snapshotFamilies({ ...EMPTY_SNAPSHOT, version, jobs: registry.view().jobs }, 'prometheus');
  const family = families.find((f) => f.includes('# TYPE jouleflow_job_info gauge')) ?? '';
  return family.split('\n').filter((l) => l.startsWith('jouleflow_job_info{'));
}

it("describe(): the scheduler's name, user and labels reach jouleflow_job_info, the job's report and the ledger", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-describe-'));
  const ledger = new Ledger(path.join(dir, 'jobs.db'), silentLogger);
  const { fake, registry, step } = setup(undefined, ledger);
  try {
    fake.set(700, { ppid: 1, environ: { SLURM_JOB_ID: '4242' }, starttime: OLD });
    step();
    expect(jobInfo(registry, 1)).toEqual(['jouleflow_job_info{job_id="4242",job_name="slurm job 4242",user="",scheduler="slurm"} 1']);
    expect(registry.registry.describe('4242', { name: 'gpt2-train', user: 'alice', labels: { partition: 'gpu', account: 'nlp' } })).toBe(
      true,
    );
    // The placeholder series is gone, not left beside the new one.
    expect(jobInfo(registry, 2)).toEqual(['jouleflow_job_info{job_id="4242",job_name="gpt2-train",user="alice",scheduler="slurm"} 1']);
    expect(registry.get('4242')).toMatchObject({ name: 'gpt2-train', user: 'alice', labels: { partition: 'gpu', account: 'nlp' } });
    expect(ledger.get('4242')).toMatchObject({ name: 'gpt2-train', user: 'alice', labels: { partition: 'gpu', account: 'nlp' } });
    expect(registry.registry.describe('no-such-job', { name: 'x' })).toBe(false); // a job gone meanwhile: nothing happens
  } finally {
    registry.close();
    fake.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('a job registered by the Slurm prolog (cgroup, scheduler=slurm) ends with its last process when no epilog comes', () => {
  const { fake, registry, step } = setup();
  registry.register({ id: '88', name: 'slurm job 88', cgroup: '/slurm/uid_0/job_88', labels: { scheduler: 'slurm' } });
  registry.register({ id: 'kept', name: 'api cgroup job', cgroup: '/custom/kept' });
  step(); // no process yet: both stay running (the prolog runs before the job's first process)
  expect(registry.get('88')?.state).toBe('running');
  fake.set(800, { ppid: 1, environ: { SLURM_JOB_ID: '88' }, starttime: 100_500 });
  fake.set(801, { ppid: 1, cgroup: '0::/custom/kept/task\n', starttime: 100_500 });
  step();
  expect([registry.membership().get(800), registry.membership().get(801)]).toEqual(['88', 'kept']);
  fake.remove(800);
  fake.remove(801);
  step();
  // The sampler records each tick's split; a job asked to end ends there.
  registry.record(
    { t: Date.now(), dt: 1, series: [], events: [] },
    { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } },
  );
  expect(registry.get('88')?.state).toBe('ended');
  // Other API jobs given by cgroup keep waiting for their end call, as before.
  expect(registry.get('kept')?.state).toBe('running');
  fake.cleanup();
});
