import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Component } from '../core';
import type { Attribution } from '../model/attribution';
import { silentLogger } from '../util/log';
import { Ledger } from './ledger';
import { JobRegistry } from './registry';

/**
 * The registry's snapshot view: an unchanged job is the same frozen object tick after tick (no
 * allocation per idle job), and every change to what it shows gives a new one, leaving the
 * snapshot already published as it was.
 */

let now = 1_000_000;
const noProcesses = { startOf: () => undefined, ownerOf: () => undefined };

function registry(ledger?: Ledger): JobRegistry {
  return new JobRegistry({
    log: silentLogger,
    ledger,
    clock: () => now,
    liveCap: 10,
    endedCap: 10,
    retentionMs: 60_000,
    checkpointMs: 5_000,
    ledgerRetentionMs: 0,
    carbon: { zone: '' },
  });
}

const measured = { compute: 'measured', transmit: 'measured', store: 'measured', cooling: 'measured' } as const;
function share(id: string, joules: Record<Component, number>): Attribution {
  return { jobs: [{ id, joules, method: measured }], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } };
}
const viewOf = (r: JobRegistry, id: string) => r.view().jobs.find((j) => j.labels.job_id === id);

test('an idle job is the same frozen view every tick; a share, a rename, work and the end each give a new one', () => {
  const r = registry();
  r.register({ id: 'a', name: 'first', cgroup: '/a' }, noProcesses);
  r.register({ id: 'b', name: 'second', cgroup: '/b' }, noProcesses);
  const before = viewOf(r, 'a')!;
  expect(Object.isFrozen(before) && Object.isFrozen(before.joules.compute)).toBe(true);
  r.record((now += 1000), 1, { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } });
  expect(viewOf(r, 'a')).toBe(before);

  r.record((now += 1000), 2, share('a', { compute: 10, transmit: 2, store: 4, cooling: 6 }));
  const shared = viewOf(r, 'a')!;
  expect(shared).not.toBe(before);
  expect(shared.joules.compute.measured).toBe(10);
  expect(shared.watts).toEqual({ compute: 5, transmit: 1, store: 2, cooling: 3 });
  expect(before.joules.compute.measured).toBe(0);
  expect(viewOf(r, 'b')!.joules.compute.measured).toBe(0);

  // The next interval without a share: the power is gone, the energy stays.
  r.record((now += 1000), 1, { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } });
  expect(viewOf(r, 'a')!.watts).toBeUndefined();
  expect(viewOf(r, 'a')!.joules.compute.measured).toBe(10);

  r.describe('a', { name: 'renamed' });
  expect(viewOf(r, 'a')!.labels.job_name).toBe('renamed');

  expect(r.workOf('a').setTotal('tokens', 42).ok).toBe(true);
  expect(viewOf(r, 'a')!.work).toEqual({ tokens: 42 });

  void r.end('a');
  r.record((now += 1000), 1, { jobs: [], unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } });
  expect(viewOf(r, 'a')!.endMs).toBe(now);
});

test('a job whose share is zero tick after tick (members asleep) keeps one view; a non-zero share gives a new one', () => {
  const r = registry();
  r.register({ id: 'z', name: 'sleepy', cgroup: '/z' }, noProcesses);
  const zero = { compute: 0, transmit: 0, store: 0, cooling: 0 };
  r.record((now += 1000), 1, share('z', zero));
  const first = viewOf(r, 'z')!;
  expect(first.watts).toEqual(zero);
  for (let i = 0; i < 3; i++) {
    r.record((now += 1000), 1, share('z', zero));
    expect(viewOf(r, 'z')).toBe(first);
  }
  r.record((now += 1000), 1, share('z', { ...zero, store: 3 }));
  const busy = viewOf(r, 'z')!;
  expect(busy).not.toBe(first);
  expect(busy.joules.store.measured).toBe(3);
  expect(busy.watts).toEqual({ ...zero, store: 3 });
  expect(first.watts).toEqual(zero); // the published view is not changed under a snapshot
  r.record((now += 1000), 1, share('z', zero));
  expect(viewOf(r, 'z')!.watts).toEqual(zero); // the power fell back to 0: a new view again
  expect(viewOf(r, 'z')!.joules.store.measured).toBe(3);
});

test('the ledger: a row on registration, running totals at most every checkpoint interval, all of them on close', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-reg-'));
  const file = path.join(dir, 'jobs.db');
  try {
    const r = registry(new Ledger(file, silentLogger));
    r.register({ id: 'a', name: 'first', cgroup: '/a' }, noProcesses);
    const stored = () => {
      const l = new Ledger(file, silentLogger);
      const joules = l.get('a')?.totals.compute.measured;
      l.close();
      return joules;
    };
    expect(stored()).toBe(0);
    const compute = (j: number) => share('a', { compute: j, transmit: 0, store: 0, cooling: 0 });
    r.record((now += 1000), 1, compute(60));
    expect(stored()).toBe(60);
    r.record((now += 1000), 1, compute(5));
    expect(stored()).toBe(60); // 1 s after the last checkpoint: not yet
    r.record((now += 4000), 4, compute(5));
    expect(stored()).toBe(70);
    r.record((now += 1000), 1, compute(5));
    r.close();
    expect(stored()).toBe(75);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
