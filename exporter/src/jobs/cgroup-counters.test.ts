import { cgroupPlaces, v1CpuSeconds, v1IoBytes, v2CpuSeconds, v2IoBytes, within } from './cgroup-counters';

describe('cgroup counter formats (as Linux 6.x writes them)', () => {
  test('v2 cpu.stat: usage_usec in µs', () => {
    expect(v2CpuSeconds('usage_usec 26915226716\nuser_usec 23089150189\nsystem_usec 3826076527\nnr_periods 0\n')).toBe(26915.226716);
    expect(v2CpuSeconds('user_usec 1\n')).toBeUndefined();
    expect(v2CpuSeconds('nr_periods 0\nusage_usec 2500000\n')).toBe(2.5);
    expect(v2CpuSeconds('user_usec 1234567890123\n')).toBeUndefined();
  });
  test('v2 io.stat: rbytes + wbytes of every device, discards and ios left out; empty before any I/O', () => {
    const text =
      '259:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=1000000 dios=3\n8:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n';
    expect(v2IoBytes(text)).toBe(4096 + 8192 + 10 + 20);
    expect(v2IoBytes('')).toBe(0);
  });
  test('v1 cpuacct.usage in ns; blkio Read + Write, not Sync/Async/Total (which repeat them)', () => {
    expect(v1CpuSeconds('1500000000\n')).toBe(1.5);
    expect(v1CpuSeconds('')).toBeUndefined();
    const blkio =
      '8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 4608\n8:16 Read 1\n8:16 Write 2\nTotal 4611\n';
    expect(v1IoBytes(blkio)).toBe(4096 + 512 + 1 + 2);
  });
  test('a process’s place in each hierarchy, hybrid and pure v2', () => {
    const hybrid = '9:name=systemd:/user.slice\n7:blkio:/job/a\n4:memory:/m\n2:cpu,cpuacct:/job/a\n0::/user.slice\n';
    expect(cgroupPlaces(hybrid)).toEqual({ unified: '/user.slice', cpuacct: '/job/a', blkio: '/job/a' });
    expect(cgroupPlaces('0::/system.slice/slurmstepd.scope/job_7/step_0\n')).toEqual({
      unified: '/system.slice/slurmstepd.scope/job_7/step_0',
    });
  });
  test('within: the cgroup itself or below it, never a sibling with the same prefix', () => {
    expect(within('/a/b', '/a')).toBe(true);
    expect(within('/a', '/a')).toBe(true);
    expect(within('/ab', '/a')).toBe(false);
    expect(within(undefined, '/a')).toBe(false);
  });
});
