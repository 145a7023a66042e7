import { join, readText } from './fs';

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
