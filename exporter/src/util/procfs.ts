import * as fs from 'fs';
import * as path from 'path';
import { join, readText } from './fs';

/** The one procfs module: /proc/stat and meminfo for sources (async), /proc/PID files for jobs (sync). */

/** Jiffies of the aggregate "cpu" line of /proc/stat, and the number of logical CPUs. */
export interface CpuTimes {
  busy: number;
  total: number;
  cpus: number;
}

/** USER_HZ: the unit of /proc/stat and /proc/PID/stat times; 100 on every mainstream Linux ABI. */
export const CLOCK_TICKS_PER_SECOND = 100;

export function parseProcStat(text: string): CpuTimes {
  let busy = 0;
  let total = 0;
  let cpus = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) {
      // user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
      const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
      const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
      busy = user + nice + system + irq + softirq;
      total = busy + idle + iowait + steal;
    } else if (/^cpu\d+ /.test(line)) {
      cpus++;
    }
  }
  if (total === 0) throw new Error('/proc/stat has no aggregate cpu line');
  return { busy, total, cpus };
}

export async function readProcStat(procfs: string): Promise<CpuTimes> {
  return parseProcStat(await readText(join(procfs, 'stat')));
}

/** MemTotal from /proc/meminfo, in bytes. */
export async function readMemTotalBytes(procfs: string): Promise<number> {
  const text = await readText(join(procfs, 'meminfo'));
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(text);
  if (!m) throw new Error(`${join(procfs, 'meminfo')}: no MemTotal line`);
  return Number(m[1]) * 1024;
}

// Small, synchronous readers of /proc/PID files for the jobs tracker. Synchronous on purpose:
// each read is a few microseconds of kernel work, and a promise per file would cost more than
// the read itself when a tick touches hundreds of processes.

export interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
  /** utime + stime, clock ticks (USER_HZ). */
  cpuTicks: number;
  /** cutime + cstime: CPU of waited-for children, clock ticks. */
  childTicks: number;
  /** Start time after boot, clock ticks: with the pid, identifies a process across PID reuse. */
  starttime: number;
}

/** Parses /proc/PID/stat; the command name may contain spaces and parentheses. */
export function parseProcPidStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  const f = text.slice(close + 2).split(' ');
  // f[0] = field 3 (state); field N is f[N - 3].
  if (f.length < 20) return undefined;
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  const cutime = Number(f[13]);
  const cstime = Number(f[14]);
  const starttime = Number(f[19]);
  const ppid = Number(f[1]);
  if (![pid, ppid, utime, stime, cutime, cstime, starttime].every(Number.isFinite)) return undefined;
  return { pid, ppid, state: f[0], cpuTicks: utime + stime, childTicks: cutime + cstime, starttime };
}

/** Storage bytes from /proc/PID/io: read_bytes + write_bytes − cancelled_write_bytes (never negative). */
export function parseProcPidIo(text: string): number | undefined {
  let read: number | undefined;
  let write: number | undefined;
  let cancelled = 0;
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const key = line.slice(0, i);
    if (key === 'read_bytes') read = Number(line.slice(i + 1));
    else if (key === 'write_bytes') write = Number(line.slice(i + 1));
    else if (key === 'cancelled_write_bytes') cancelled = Number(line.slice(i + 1));
  }
  if (read === undefined || write === undefined || !Number.isFinite(read + write + cancelled)) return undefined;
  return Math.max(0, read + write - cancelled);
}

/** Per interface of a /proc/net/dev (or /proc/PID/net/dev): bytes received and sent. */
export function parseProcNetDev(text: string): Array<{ name: string; rxBytes: number; txBytes: number }> {
  const out = [];
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    out.push({ name: m[1], rxBytes: f[0], txBytes: f[8] });
  }
  return out;
}

/** Sum of rx+tx bytes over the interfaces of a /proc/PID/net/dev, loopback excluded. */
export function parseNetDevBytes(text: string): number {
  let total = 0;
  for (const d of parseProcNetDev(text)) {
    if (d.name === 'lo') continue;
    if (Number.isFinite(d.rxBytes)) total += d.rxBytes;
    if (Number.isFinite(d.txBytes)) total += d.txBytes;
  }
  return total;
}

/** /proc/uptime's first field, in clock ticks (USER_HZ = 100). */
export function parseUptimeTicks(text: string, ticksPerSecond: number): number | undefined {
  const v = Number(text.trim().split(/\s+/)[0]);
  return Number.isFinite(v) ? Math.floor(v * ticksPerSecond) : undefined;
}

/** Value of one variable in a NUL-separated /proc/PID/environ. */
export function environValue(environ: string, name: string): string | undefined {
  const key = `${name}=`;
  let start = 0;
  while (start < environ.length) {
    let end = environ.indexOf('\0', start);
    if (end < 0) end = environ.length;
    if (environ.startsWith(key, start)) return environ.slice(start + key.length, end);
    start = end + 1;
  }
  return undefined;
}

// One shared buffer: open/read/close on it costs a third of readFileSync (no fstat, no
// allocation per file), which matters when a tick reads hundreds of small /proc files.
const BUF = Buffer.allocUnsafe(64 * 1024);

export function readFileOrUndefined(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    let len = 0;
    for (;;) {
      const n = fs.readSync(fd, BUF, len, BUF.length - len, null);
      if (n === 0) break;
      len += n;
      if (len === BUF.length) return BUF.toString('latin1', 0, len) + fs.readFileSync(fd, 'latin1');
    }
    return BUF.toString('latin1', 0, len);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export function readLinkOrUndefined(file: string): string | undefined {
  try {
    return fs.readlinkSync(file);
  } catch {
    return undefined;
  }
}

/** Numeric entries of the procfs root: the PIDs of all processes (threads are not listed there). */
export function listPids(procfs: string): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(procfs);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const n of names) {
    const c = n.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(n);
    if (Number.isInteger(pid) && pid > 0) out.push(pid);
  }
  return out;
}

export function pidPath(procfs: string, pid: number, file: string): string {
  return path.join(procfs, String(pid), file);
}
