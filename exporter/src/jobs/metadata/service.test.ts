import { createLogger } from '../../util/log';
import { MetadataService } from './service';
import type { JobMetadata, MetadataResolver } from './types';

/**
 * The lookup queue: once per job, a bounded number of lookups at a time, retries while the
 * scheduler does not know the job yet, and one warning when it never does.
 */

class Scheduler implements MetadataResolver {
  readonly scheduler = 'slurm';
  calls: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly answer: (id: string, attempt: number) => JobMetadata | undefined | Error) {}
  async resolve(id: string): Promise<JobMetadata | undefined> {
    this.calls.push(id);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    const a = this.answer(id, this.calls.filter((c) => c === id).length);
    if (a instanceof Error) throw a;
    return a;
  }
}

function setup(s: Scheduler, delays = [1, 1]) {
  const applied: Array<[string, JobMetadata]> = [];
  const lines: string[] = [];
  const svc = new MetadataService(
    [s],
    (id, m) => applied.push([id, m]),
    createLogger('info', 'logfmt', (l) => lines.push(l)),
    delays,
  );
  return { svc, applied, lines };
}

it('looks each job up once and applies the answer; other schedulers are ignored', async () => {
  const s = new Scheduler((id) => ({ name: `job-${id}`, user: 'alice' }));
  const { svc, applied } = setup(s);
  for (const id of ['1', '2', '1', '3', '2']) svc.request('slurm', id);
  svc.request('kubernetes', 'uid');
  await svc.idle();
  expect(s.calls.sort()).toEqual(['1', '2', '3']);
  expect(applied.sort()).toEqual([
    ['1', { name: 'job-1', user: 'alice' }],
    ['2', { name: 'job-2', user: 'alice' }],
    ['3', { name: 'job-3', user: 'alice' }],
  ]);
  expect(s.maxInFlight).toBeLessThanOrEqual(2);
  svc.close();
});

it('retries a job the scheduler does not know yet, then applies it', async () => {
  const s = new Scheduler((_id, attempt) => (attempt < 2 ? undefined : { name: 'late' }));
  const { svc, applied } = setup(s);
  svc.request('slurm', '7');
  const until = Date.now() + 5000;
  while (applied.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  expect(applied).toEqual([['7', { name: 'late' }]]);
  expect(s.calls).toEqual(['7', '7']);
  svc.close();
});

it('gives up after the retries with one warning naming the job and the error', async () => {
  const s = new Scheduler(() => new Error('slurmctld down'));
  const { svc, applied, lines } = setup(s, [1, 1]);
  svc.request('slurm', '9');
  const until = Date.now() + 5000;
  while (lines.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  expect(s.calls).toEqual(['9', '9', '9']);
  expect(applied).toEqual([]);
  expect(lines).toEqual([expect.stringMatching(/level=warn .*job_id=9 .*attempts=3 .*slurmctld down/)]);
  svc.close();
});
