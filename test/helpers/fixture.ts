import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

export const FIXTURES = join(__dirname, '..', 'fixtures');

/** A private, writable copy of a fixture tree (tests change counters between ticks). */
export class FixtureTree {
  readonly root: string;
  constructor(name = 'host') {
    this.root = mkdtempSync(join(tmpdir(), `jouleflow-${name}-`));
    cpSync(join(FIXTURES, name), this.root, { recursive: true });
  }
  get sysfs(): string {
    return join(this.root, 'sys');
  }
  get procfs(): string {
    return join(this.root, 'proc');
  }
  path(rel: string): string {
    return join(this.root, rel);
  }
  read(rel: string): string {
    return readFileSync(this.path(rel), 'utf8');
  }
  /** Atomic (write, then rename), as sysfs reads are: the exporter never sees a half-written file. */
  write(rel: string, text: string): void {
    const tmp = `${this.path(rel)}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.path(rel));
  }
  /** Adds `by` to the single number stored in a sysfs-style file. */
  add(rel: string, by: number): number {
    const next = Number(this.read(rel).trim()) + by;
    this.write(rel, `${next}\n`);
    return next;
  }
  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Rewrites one device line of /proc/diskstats, adding sectors read and written. */
export function bumpDiskstats(tree: FixtureTree, device: string, sectorsRead: number, sectorsWritten: number): void {
  const lines = tree.read('proc/diskstats').split('\n');
  const out = lines.map((line) => {
    const f = line.trim().split(/\s+/);
    if (f[2] !== device) return line;
    f[5] = String(Number(f[5]) + sectorsRead);
    f[9] = String(Number(f[9]) + sectorsWritten);
    return f.join(' ');
  });
  tree.write('proc/diskstats', out.join('\n'));
}

/** Adds busy and idle jiffies to the aggregate cpu line of /proc/stat. */
export function bumpProcStat(tree: FixtureTree, busyUser: number, idle: number): void {
  const text = tree
    .read('proc/stat')
    .split('\n')
    .map((line) => {
      if (!line.startsWith('cpu ')) return line;
      const f = line.trim().split(/\s+/);
      f[1] = String(Number(f[1]) + busyUser);
      f[4] = String(Number(f[4]) + idle);
      return f.join(' ');
    })
    .join('\n');
  tree.write('proc/stat', text);
}
