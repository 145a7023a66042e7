import * as fs from 'fs';
import * as path from 'path';
import { join, readFdText, readText } from './fs';

/** The one procfs module: /proc/stat and meminfo for sources, /proc/PID files for jobs (sync). */

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

/**
 * The decimal integer in text[from, to), or NaN; parsed in place, as a tick parses thousands. Signed:
 * the kernel prints some of these fields with %ld (cutime, cstime).
 */
function decimalAt(text: string, from: number, to: number): number {
  const negative = text.charCodeAt(from) === 45; // '-'
  if (negative) from++;
  if (from >= to) return NaN;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

/**
 * Parses /proc/PID/stat; the command name may contain spaces and parentheses. Fields are found by
 * walking the spaces after the name, without splitting the line into fifty strings.
 */
export function parseProcPidStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0 || text.charCodeAt(close + 1) !== 32) return undefined;
  const pid = decimalAt(text, 0, text.indexOf(' '));
  let state = '';
  let ppid = NaN;
  let utime = NaN;
  let stime = NaN;
  let cutime = NaN;
  let cstime = NaN;
  let starttime = NaN;
  // Field 3 (state) starts two characters after the name's closing parenthesis.
  let start = close + 2;
  for (let field = 3; field <= 22; field++) {
    let end = text.indexOf(' ', start);
    if (end < 0) end = text.length;
    if (field === 3) state = text.slice(start, end);
    else if (field === 4) ppid = decimalAt(text, start, end);
    else if (field === 14) utime = decimalAt(text, start, end);
    else if (field === 15) stime = decimalAt(text, start, end);
    else if (field === 16) cutime = decimalAt(text, start, end);
    else if (field === 17) cstime = decimalAt(text, start, end);
    else if (field === 22) starttime = decimalAt(text, start, end);
    if (end === text.length && field < 22) return undefined;
    start = end + 1;
  }
  if (![pid, ppid, utime, stime, cutime, cstime, starttime].every(Number.isFinite)) return undefined;
  return { pid, ppid, state, cpuTicks: utime + stime, childTicks: cutime + cstime, starttime };
}

/** The number after `key` ("\nread_bytes:") up to the end of its line; undefined when absent. */
function ioField(text: string, key: string): number | undefined {
  let i = text.indexOf(key);
  if (i < 0) return undefined;
  i += key.length;
  while (text.charCodeAt(i) === 32) i++;
  let end = text.indexOf('\n', i);
  if (end < 0) end = text.length;
  return decimalAt(text, i, end);
}

/** Storage bytes from /proc/PID/io: read_bytes + write_bytes − cancelled_write_bytes (never negative). */
export function parseProcPidIo(text: string): number | undefined {
  // With the newline before them, "write_bytes" is not found inside "cancelled_write_bytes".
  const lines = '\n' + text;
  const read = ioField(lines, '\nread_bytes:');
  const write = ioField(lines, '\nwrite_bytes:');
  const cancelled = ioField(lines, '\ncancelled_write_bytes:') ?? 0;
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

/** A /proc/PID file read once (identity, namespaces); counters read every tick go through KernelFiles. */
export function readFileOrUndefined(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    return readFdText(fd, 'latin1');
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * How many descriptors the jobs tracker may keep open for its members' counters: half of what the
 * soft RLIMIT_NOFILE leaves after a reserve for sockets, the ledger and the sources, at most 16 384
 * (8 192 member processes, two files each). Beyond it files are opened per read.
 */
export function descriptorBudget(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileOrUndefined('/proc/self/limits') ?? '');
  const soft = m === null ? 1024 : m[1] === 'unlimited' ? Infinity : Number(m[1]);
  return Math.max(0, Math.min(16_384, Math.floor((soft - 512) / 2)));
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
