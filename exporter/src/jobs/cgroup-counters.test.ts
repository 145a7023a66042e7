import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cgroupPlaces, countedDevices, v1CpuSeconds, v2CpuSeconds, v2IoBytes, within } from './cgroup-counters';

describe('cgroup counter formats (as Linux 6.x writes them)', () => {
  test('v2 cpu.stat: usage_usec in µs', () => {
    expect(v2CpuSeconds('usage_usec 26915226716\nuser_usec 23089150189\nsystem_usec 3826076527\nnr_periods 0\n')).toBe(26915.226716);
    expect(v2CpuSeconds('user_usec 1\n')).toBeUndefined();
    expect(v2CpuSeconds('nr_periods 0\nusage_usec 2500000\n')).toBe(2.5);
    expect(v2CpuSeconds('user_usec 1234567890123\n')).toBeUndefined();
  });
  test('v2 io.stat: rbytes + wbytes of the counted devices, discards and ios left out; empty before any I/O', () => {
    const text =
      '259:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=1000000 dios=3\n8:0 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n';
    expect(v2IoBytes(text)).toBe(4096 + 8192 + 10 + 20);
    expect(v2IoBytes(text, (d) => d !== '259:0')).toBe(30);
    expect(v2IoBytes('')).toBe(0);
  });
  test('v1 cpuacct.usage in ns', () => {
    expect(v1CpuSeconds('1500000000\n')).toBe(1.5);
    expect(v1CpuSeconds('')).toBeUndefined();
  });
  test('a stacked device (dm-, md) lists the bytes of the disks beneath it: left out by the storage source’s rule', () => {
    const sysfs = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-sysfs-'));
    try {
      fs.mkdirSync(path.join(sysfs, 'dev/block'), { recursive: true });
      fs.symlinkSync('../../devices/virtual/block/dm-0', path.join(sysfs, 'dev/block/253:0'));
      fs.symlinkSync('../../devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1', path.join(sysfs, 'dev/block/259:0'));
      const counted = countedDevices(sysfs, /^(loop|dm-|md)\d*/);
      const text = '253:0 rbytes=100 wbytes=100 rios=1 wios=1 dbytes=0 dios=0\n259:0 rbytes=100 wbytes=100 rios=1 wios=1 dbytes=0 dios=0\n';
      expect(v2IoBytes(text, counted)).toBe(200); // the bytes once, on nvme0n1
      expect(counted('8:0')).toBe(true); // a device sysfs does not name counts (a disk)
    } finally {
      fs.rmSync(sysfs, { recursive: true, force: true });
    }
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
