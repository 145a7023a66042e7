import type { Metric, Registry } from 'prom-client';

/**
 * The Prometheus text exposition of a prom-client registry, written in slices that yield to the event
 * loop: at 20 000 series one synchronous `registry.metrics()` holds the loop for ~20–30 ms, and every
 * scrape or timer arriving meanwhile waits. Output matches prom-client's (families separated by a
 * blank line), except that NaN is spelled "NaN".
 */

const SLICE = 1000;

function escapeLabel(v: unknown): string {
  return String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return String(v);
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function renderSliced(registry: Registry, slice = SLICE): Promise<string> {
  const families: string[] = [];
  let written = 0;
  // The registry's array holds the metric objects themselves (typed as plain MetricObject).
  for (const metric of registry.getMetricsAsArray() as unknown as Metric[]) {
    const data = await metric.get();
    const lines = [`# HELP ${data.name} ${escapeHelp(data.help)}`, `# TYPE ${data.name} ${data.type}`];
    for (const v of data.values) {
      const labels = Object.entries(v.labels ?? {})
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => `${k}="${escapeLabel(x)}"`)
        .join(',');
      const name = (v as { metricName?: string }).metricName ?? data.name;
      lines.push(`${name}${labels ? `{${labels}}` : ''} ${formatValue(v.value)}`);
      if (++written % slice === 0) await yieldToLoop();
    }
    families.push(lines.join('\n'));
  }
  return families.join('\n\n') + '\n';
}
