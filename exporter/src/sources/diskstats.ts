import type { Logger } from '../util/log';
import { exists, join, KernelFiles, readTrimmed } from '../util/fs';
import { SourceError } from './types';
import type { DiskstatsConfig } from './schema';
import type { ActivityReading, SampleResult, Source } from './types';

/**
 * Storage energy from /proc/diskstats: ΔE = bytes_read · e_read + bytes_written · e_write + P_idle · Δt.
 * Sector counts in /proc/diskstats are always 512-byte units, whatever the device's sector size.
 * Partitions and virtual devices (loop, ram, zram, device-mapper, md) are skipped: their I/O is
 * already counted on the physical disks underneath.
 */

export const SECTOR_BYTES = 512;

export interface DiskParams {
  idleWatts: number;
  readJoulesPerByte: number;
  writeJoulesPerByte: number;
}

export type DiskClass = 'ssd' | 'hdd';

export const DISK_DEFAULTS: Record<DiskClass, DiskParams> = {
  ssd: { idleWatts: 5, readJoulesPerByte: 5e-9, writeJoulesPerByte: 5e-9 },
  hdd: { idleWatts: 7, readJoulesPerByte: 10e-9, writeJoulesPerByte: 12e-9 },
};

export type { DiskstatsConfig };

export interface DiskLine {
  name: string;
  readBytes: number;
  writeBytes: number;
}

export function parseDiskstats(text: string): DiskLine[] {
  const out: DiskLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    // major minor name reads merged sectors_read ms writes merged sectors_written ...
    out.push({ name: f[2], readBytes: Number(f[5]) * SECTOR_BYTES, writeBytes: Number(f[9]) * SECTOR_BYTES });
  }
  return out;
}

export class DiskstatsSource implements Source {
  readonly name = 'diskstats';
  private readonly exclude: RegExp;
  /** Per device: its parameters, or null when it is skipped (partition, virtual). */
  private readonly known = new Map<string, DiskParams | null>();
  /** /proc/diskstats is printed from in-memory per-disk counters: a synchronous read never waits. */
  private readonly files = new KernelFiles();
  private readonly diskstatsPath: string;

  constructor(
    procfs: string,
    private readonly sysfs: string,
    private readonly cfg: DiskstatsConfig,
    private readonly log: Logger,
  ) {
    this.exclude = new RegExp(cfg.exclude);
    this.diskstatsPath = join(procfs, 'diskstats');
  }

  async close(): Promise<void> {
    this.files.close();
  }

  async init(): Promise<boolean> {
    const disks = await this.disks();
    this.log.info('block devices found', { devices: disks.map((d) => d.name).join(',') || 'none' });
    return true;
  }

  private async classify(name: string): Promise<DiskParams | null> {
    if (this.exclude.test(name)) return null;
    const cls = join(this.sysfs, 'class/block', name);
    if (await exists(join(cls, 'partition'))) return null;
    let kind: DiskClass = 'ssd';
    if (!name.startsWith('nvme')) {
      const rot = await readTrimmed(join(this.sysfs, 'block', name, 'queue/rotational')).catch(() => '0');
      if (rot === '1') kind = 'hdd';
    }
    return { ...DISK_DEFAULTS[kind], ...this.cfg[kind], ...this.cfg.devices[name] } as DiskParams;
  }

  private async disks(): Promise<Array<DiskLine & { params: DiskParams }>> {
    const text = await this.files.read(this.diskstatsPath);
    const lines = parseDiskstats(text);
    // Every kernel lists at least its block devices: text without one parseable line is garbage.
    if (lines.length === 0 && text.trim() !== '') throw new SourceError('bad_value', '/proc/diskstats has no parseable line');
    const out = [];
    for (const l of lines) {
      // Only a device seen for the first time is classified (asynchronously, from sysfs).
      if (!this.known.has(l.name)) this.known.set(l.name, await this.classify(l.name));
      const params = this.known.get(l.name);
      if (params) out.push({ ...l, params });
    }
    return out;
  }

  async sample(): Promise<SampleResult> {
    const readings: ActivityReading[] = (await this.disks()).map((d) => ({
      kind: 'activity',
      component: 'store',
      domain: 'disk',
      device: d.name,
      source: this.name,
      counters: { read_bytes: d.readBytes, write_bytes: d.writeBytes },
      joulesPerUnit: { read_bytes: d.params.readJoulesPerByte, write_bytes: d.params.writeJoulesPerByte },
      idleWatts: d.params.idleWatts,
    }));
    return { readings };
  }
}
