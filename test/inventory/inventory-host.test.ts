import { existsSync, readFileSync, readdirSync } from 'fs';
import { join } from 'path';
import { collectInventory } from '../../exporter/src/inventory/collect';
import { parseConfig } from '../../exporter/src/config';

/**
 * The inventory of the machine running the tests, against values read here straight from the
 * kernel's files; and with --path.sysfs/--path.procfs pointing at a recorded host tree, what it
 * describes comes from that tree and says so.
 */

const cfg = parseConfig({});
const opts = (sysfs: string, procfs: string) => ({
  sysfs,
  procfs,
  timeoutMs: 20_000,
  nicExclude: new RegExp(cfg.nics.exclude),
  diskExclude: new RegExp(cfg.disks.exclude),
});

test('this machine: CPU model, memory and NIC speeds equal /proc/cpuinfo, /proc/meminfo and /sys/class/net', async () => {
  const inv = await collectInventory(opts('/sys', '/proc'));
  expect(inv.scope).toBe('host');
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const modelName = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1].trim();
  // x86 reports "model name"; systeminformation joins vendor and brand, dropping "(R)" and the clock.
  if (modelName) {
    const words = (s: string) =>
      s
        .replace(/\((R|TM)\)|[®™]|CPU @.*$|\d+-Core Processor/gi, ' ')
        .split(/\s+/)
        .filter(Boolean);
    expect(words(inv.cpu?.model ?? '')).toEqual(expect.arrayContaining(words(modelName).filter((w) => !/^(Processor|CPU)$/i.test(w))));
  }
  // A VM by the kernel's own word (x86 "hypervisor" flag), whether or not the tests run in a container.
  if (/^flags\s*:.*\bhypervisor\b/m.test(cpuinfo)) expect(inv.system?.virtual).toBe(true);
  const threads = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  expect(inv.cpu?.threads).toBe(threads);
  const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);
  expect(inv.memoryBytes).toBe(memTotalKb * 1024);
  for (const nic of inv.nics) {
    let speed: number | undefined;
    try {
      speed = Number(readFileSync(`/sys/class/net/${nic.device}/speed`, 'utf8').trim());
    } catch {
      speed = undefined;
    }
    expect(nic.speedMbps).toBe(speed !== undefined && speed > 0 ? speed : undefined);
  }
  // Every physical, non-excluded interface is listed.
  const physical = readdirSync('/sys/class/net').filter((n) => {
    try {
      readdirSync(`/sys/class/net/${n}/device`);
      return !new RegExp(cfg.nics.exclude).test(n);
    } catch {
      return false;
    }
  });
  expect(inv.nics.map((n) => n.device).sort()).toEqual(physical.sort());
});

test('a recorded host tree: NICs and disks are the tree\u2019s, memory its MemTotal, and the scope says so', async () => {
  const root = join(__dirname, '../fixtures/host');
  const inv = await collectInventory(opts(join(root, 'sys'), join(root, 'proc')));
  expect(inv.scope).toBe('exporter-view');
  expect(inv.notes.join('\n')).toMatch(/--path\.sysfs\/--path\.procfs point at/);
  const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync(join(root, 'proc/meminfo'), 'utf8'))?.[1]);
  expect(inv.memoryBytes).toBe(memTotalKb * 1024);
  // The tree's physical interfaces, as the netdev source counts them: a device link, no SR-IOV
  // VF (device/physfn), no IPoIB (type 32) since the tree has InfiniBand ports counted as such.
  const net = (n: string, f: string) => join(root, 'sys/class/net', n, f);
  expect(
    inv.nics
      .filter((n) => n.kind === 'nic')
      .map((n) => n.device)
      .sort(),
  ).toEqual(
    ['eth0', 'eth0v0', 'ib0']
      .filter((n) => readdirSync(join(root, 'sys/class/net')).includes(n))
      .filter((n) => {
        try {
          return !readdirSync(net(n, 'device')).includes('physfn');
        } catch {
          return false;
        }
      })
      .filter((n) => !existsSync(net(n, 'type')) || readFileSync(net(n, 'type'), 'utf8').trim() !== '32')
      .sort(),
  );
  // InfiniBand ports named as the infiniband source names them; mlx5_1 is RoCE (link layer Ethernet).
  expect(inv.nics.filter((n) => n.kind === 'infiniband').map((n) => n.device)).toEqual(['mlx5_0:1']);
  // Disks: the whole disks of the tree's diskstats (no partitions, loops or device-mapper).
  expect(inv.disks.map((d) => d.device).sort()).toEqual(['nvme0n1', 'sda']);
  expect(inv.disks.find((d) => d.device === 'nvme0n1')?.kind).toBe('ssd');
});

test('systeminformation is bounded by the timeout: past it the sysfs/procfs part is still there and the note says why', async () => {
  const root = join(__dirname, '../fixtures/host');
  const inv = await collectInventory({ ...opts(join(root, 'sys'), join(root, 'proc')), timeoutMs: 1 });
  expect(inv.notes).toContain('systeminformation did not answer within 1 ms');
  expect(inv.cpu).toBeUndefined();
  expect(inv.disks.map((d) => d.device).sort()).toEqual(['nvme0n1', 'sda']);
  expect(inv.memoryBytes).toBeGreaterThan(0);
});
