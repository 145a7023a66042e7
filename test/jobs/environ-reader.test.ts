import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { EnvironReader, PENDING } from '../../exporter/src/jobs/environ-reader';
import { FakeProcfs } from './fakeproc';

/** /proc/PID/environ reads off the event loop: blocked reads, exits and PID reuse. */

const OLD = 50_000;

describe('EnvironReader with a read blocked like a process in D state (a FIFO nobody writes)', () => {
  let fake: FakeProcfs;
  let fifo: string;
  /** Whether a read may still be blocked on the FIFO (opening it to write blocks without a reader). */
  let blocked: boolean;
  beforeEach(() => {
    blocked = true;
    fake = new FakeProcfs();
    fake.set(200, { ppid: 1, starttime: OLD });
    fifo = path.join(fake.root, '200', 'environ');
    fs.rmSync(fifo);
    execFileSync('mkfifo', [fifo]);
  });
  afterEach(() => {
    // Unblock the thread-pool read (if still blocked) so the test process can exit.
    if (blocked) fs.writeFileSync(fifo, 'PATH=/bin\0');
    fake.cleanup();
  });

  it('prefetch() leaves no polling timer behind once its wait is over', async () => {
    const reader = new EnvironReader(fake.root, () => undefined);
    const spy = jest.spyOn(global, 'setTimeout');
    try {
      await reader.prefetch([200], 1, 5);
      expect(reader.lookup(200)).toBe(PENDING);
      const before = spy.mock.calls.length;
      await new Promise((r) => setTimeout(r, 30));
      // Only the test's own timer: nothing keeps polling for the blocked read.
      expect(spy.mock.calls.length - before).toBe(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('a late result for a process that exited is not applied to a later process with its PID', async () => {
    const applied: Array<[number, string | undefined]> = [];
    const reader = new EnvironReader(fake.root, (pid, env) => applied.push([pid, env]));
    // Tick 1: process A (pid 200) is new; its environ read blocks.
    await reader.prefetch([200], 1, 5);
    expect(reader.lookup(200)).toBe(PENDING);
    // A exits (the tracker forgets it); its read is still blocked.
    const moved = path.join(fake.root, 'gone-200');
    fs.renameSync(path.join(fake.root, '200'), moved);
    fifo = path.join(moved, 'environ');
    reader.forget(200);
    // Process B gets pid 200, without JOULEFLOW_JOB.
    fake.set(200, { ppid: 1, starttime: OLD + 7, environ: { PATH: '/usr/bin' } });
    await reader.prefetch([200], 3, 5);
    // A's read finally returns A's environment.
    fs.writeFileSync(fifo, 'JOULEFLOW_JOB=job-of-a\0');
    blocked = false;
    await reader.prefetch([], 4, 10_000); // until every read has settled
    expect(applied.filter(([, env]) => env?.includes('job-of-a'))).toEqual([]);
    expect(reader.lookup(200)).toBe('PATH=/usr/bin\0');
  });
});
