import { readdirSync, readFileSync, statSync } from 'fs';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * The exporter's own process_* metrics, as every Prometheus exporter reports them (the names of
 * client_golang's process collector): CPU, memory, file descriptors, start time. Read from
 * /proc/self when a scrape renders (once per tick at most), so they cost nothing while idle;
 * prom-client's collectDefaultMetrics() would add an event-loop monitor, a GC observer and
 * nodejs_* gauges named `_total`, which promtool rejects.
 */

const PAGE_SIZE = 4096;

function selfStat(): { rss: number; vsize: number } | undefined {
  try {
    const text = readFileSync('/proc/self/stat', 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // Fields 23 (vsize, bytes) and 24 (rss, pages), counted from 1 with pid and comm first.
    return { vsize: Number(f[20]), rss: Number(f[21]) * PAGE_SIZE };
  } catch {
    return undefined;
  }
}

/**
 * Open descriptors. Since Linux 6.2 the size of /proc/self/fd is their count, one stat instead of
 * listing them all on every scrape (the jobs tracker may keep thousands open); older kernels report
 * 0 there, and the listing (which includes its own descriptor) is the fallback.
 */
function openFds(): number | undefined {
  try {
    const counted = statSync('/proc/self/fd').size;
    return counted > 0 ? counted : readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}

function maxFds(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  const gauge = (name: string, help: string, read: () => number | undefined) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const v = read();
        if (v !== undefined) this.set(v);
      },
    });
  gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => selfStat()?.rss ?? process.memoryUsage().rss);
  gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', () => selfStat()?.vsize);
  gauge('process_heap_bytes', 'Process heap size in bytes.', () => process.memoryUsage().heapTotal);
  gauge('process_open_fds', 'Number of open file descriptors.', openFds);
  gauge('process_max_fds', 'Maximum number of open file descriptors.', maxFds);
  const start = Date.now() / 1000 - process.uptime();
  gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => Math.round(start));
}
