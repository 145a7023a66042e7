import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Ledger } from '../../exporter/src/jobs/ledger';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import { silentLogger } from '../../exporter/src/util/log';
import { JobAccess } from '../../exporter/src/web/job-access';
import { FakeProcfs } from '../jobs/fakeproc';

/** The registering uid is stored with the job, in the ledger too: after a restart its owner still ends it, nobody else. */

it('the owner uid survives a restart (ledger) and still decides who may end the job', () => {
  const fake = new FakeProcfs();
  fake.set(100, { ppid: 1, starttime: 50_000 });
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'jf-owner-')), 'jobs.db');
  const make = () =>
    new JobTracker({
      procfs: fake.root,
      log: silentLogger,
      ledger: new Ledger(file),
      liveCap: 10,
      retentionMs: 60_000,
      checkpointMs: 0,
      carbon: { zone: 'DE' },
      discovery: { slurm: false, kubernetes: false, env: false },
    });
  const first = make();
  first.register({ id: 'mine', name: 'n', cgroup: '/u/job', ownerUid: 1234 });
  first.register({ id: 'roots', name: 'n', cgroup: '/r/job' });
  first.close();
  const second = make();
  expect(second.resume()).toBe(2);
  expect(second.ownerUidOf('mine')).toEqual({ exists: true, ownerUid: 1234 });
  expect(second.ownerUidOf('roots')).toEqual({ exists: true, ownerUid: undefined });
  expect(second.ownerUidOf('nope')).toEqual({ exists: false });
  const access = new JobAccess({ procfs: fake.root, sysfs: fake.root });
  expect(access.mayEnd({ kind: 'local', uid: 1234 }, second.ownerUidOf('mine'))).toBeUndefined();
  expect(access.mayEnd({ kind: 'local', uid: 999 }, second.ownerUidOf('mine'))?.status).toBe(403);
  expect(access.mayEnd({ kind: 'local', uid: 1234 }, second.ownerUidOf('roots'))?.status).toBe(403);
  second.close();
  fake.cleanup();
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});
