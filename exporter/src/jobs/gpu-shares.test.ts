import { gpuMatches, gpuShares } from './gpu-shares';

const jobOf = (pid: number) => (pid === 1 ? 'a' : pid === 2 ? 'b' : undefined);

describe('GPU shares per tick', () => {
  it('time-sliced processes reported alternately get the GPU in the ticks they ran: fair over time', () => {
    const ticks = [1, 2, 1, 2].map((pid) => gpuShares([{ device: 'gpu0', pid, smUtilPercent: 90 }], jobOf).get('gpu0'));
    expect(ticks.map((s) => s?.basis)).toEqual(['sm', 'sm', 'sm', 'sm']);
    const sum = (job: string) => ticks.reduce((a, s) => a + (s?.byJob.get(job) ?? 0), 0);
    expect(sum('a')).toBe(2);
    expect(sum('b')).toBe(2);
  });

  it('a process that left the GPU gets nothing from the next tick on (no lingering window)', () => {
    const both = gpuShares(
      [
        { device: 'gpu0', pid: 1, smUtilPercent: 60 },
        { device: 'gpu0', pid: 2, smUtilPercent: 20 },
      ],
      jobOf,
    ).get('gpu0');
    expect(both?.byJob.get('a')).toBeCloseTo(0.75, 12);
    expect(both?.byJob.get('b')).toBeCloseTo(0.25, 12);
    const after = gpuShares([{ device: 'gpu0', pid: 2, smUtilPercent: 20 }], jobOf).get('gpu0');
    expect(after?.byJob.get('a')).toBeUndefined();
    expect(after?.byJob.get('b')).toBe(1);
  });

  it('MIG (memory only) splits exactly by memory held in that tick, with no smoothing', () => {
    const t1 = gpuShares(
      [
        { device: 'gpu0', pid: 1, usedMemoryBytes: 3e9 },
        { device: 'gpu0', pid: 2, usedMemoryBytes: 1e9 },
      ],
      jobOf,
    ).get('gpu0');
    const t2 = gpuShares(
      [
        { device: 'gpu0', pid: 1, usedMemoryBytes: 1e9 },
        { device: 'gpu0', pid: 2, usedMemoryBytes: 1e9 },
      ],
      jobOf,
    ).get('gpu0');
    expect(t1?.basis).toBe('memory');
    expect(t1?.byJob.get('a')).toBeCloseTo(0.75, 12);
    expect(t2?.byJob.get('a')).toBeCloseTo(0.5, 12);
  });

  it('falls back to equal shares; processes of no job stay unattributed', () => {
    const s = gpuShares(
      [
        { device: 'gpu1', pid: 1 },
        { device: 'gpu1', pid: 9 },
      ],
      jobOf,
    ).get('gpu1');
    expect(s?.basis).toBe('equal');
    expect(s?.byJob.get('a')).toBe(0.5);
    expect([...(s?.byJob.keys() ?? [])]).toEqual(['a']);
  });
});

test('GPU specs: an index names gpuN, a GPU UUID the GPU its source reported it for; other text must match the device label', () => {
  expect(gpuMatches('0', { device: 'gpu0' })).toBe(true);
  expect(gpuMatches('1', { device: 'gpu10' })).toBe(false);
  expect(gpuMatches('gpu2', { device: 'gpu2' })).toBe(true);
  // A UUID names the GPU whose source reported that UUID with the process (any case), nothing else.
  const h200 = { device: 'gpu1', gpuUuid: 'GPU-d3794cbd-2e1b-a281-8629-0886034accb7' };
  expect(gpuMatches('GPU-d3794cbd-2e1b-a281-8629-0886034accb7', h200)).toBe(true);
  expect(gpuMatches('GPU-D3794CBD-2E1B-A281-8629-0886034ACCB7', h200)).toBe(true);
  expect(gpuMatches('GPU-d3794cbd-2e1b-a281-8629-0886034accb8', h200)).toBe(false);
  expect(gpuMatches('GPU-d3794cbd-2e1b-a281-8629-0886034accb7', { device: 'gpu1' })).toBe(false); // UUID unknown
  expect(gpuMatches('1', h200)).toBe(true);
});
