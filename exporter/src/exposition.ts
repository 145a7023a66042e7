import type { Metric, Registry } from 'prom-client';
import type { JobLabels } from './core';
import { COMPONENTS } from './core';
import type { NodeSeriesLabels, TickSnapshot } from './snapshot';
import { yieldToLoop } from './util/async';

/**
 * The exposition of a TickSnapshot, in the Prometheus text format or OpenMetrics, written
 * directly (neither derived from the other). A pure function of the snapshot plus a cache of
 * each series' `name{labels} ` prefix, made once per series lifetime (keyed by the series'
 * label object, which lives as long as the series), so a tick only formats numbers.
 *
 * The few families that are not energy (the sample-duration histogram, build info, process_*)
 * live in a small prom-client registry and are written from its public `get()` data.
 */

export type Format = 'prometheus' | 'openmetrics';

/** Series written between two turns of the event loop. */
const SLICE = 2000;

interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
}

/** Every energy family, with the HELP text dashboards and rules were written against. */
export const FAMILIES = {
  nodeEnergy: {
    name: 'jouleflow_node_energy_joules_total',
    type: 'counter',
    help: 'Energy used by this node per component and device since the exporter started, in joules.',
  },
  nodePower: {
    name: 'jouleflow_node_power_watts',
    type: 'gauge',
    help: "Power this node draws per component and device, in watts: the mean over the last sampling interval (a shared cooling meter: this node's share), or the latest sample for devices that report power rather than energy; absent for a device that did not report in that interval.",
  },
  jobEnergy: {
    name: 'jouleflow_job_energy_joules_total',
    type: 'counter',
    help: 'Energy attributed to each training job per component, in joules; job_id="unattributed" holds idle and non-job work.',
  },
  jobPower: {
    name: 'jouleflow_job_power_watts',
    type: 'gauge',
    help: 'Mean power attributed to each job per component over the last sampling interval, in watts.',
  },
  jobInfo: {
    name: 'jouleflow_job_info',
    type: 'gauge',
    help: 'Always 1; labels describe the job. Join with * on(job_id) group_left(job_name).',
  },
  jobStart: { name: 'jouleflow_job_start_time_seconds', type: 'gauge', help: 'Start time of the job since the Unix epoch, in seconds.' },
  jobEnd: {
    name: 'jouleflow_job_end_time_seconds',
    type: 'gauge',
    help: 'End time of the job since the Unix epoch, in seconds (absent while it runs).',
  },
  jobWork: {
    name: 'jouleflow_job_work_total',
    type: 'counter',
    help: 'Work each job reported per unit (tokens, samples, steps…) since it started, counted in the tick the report arrived in.',
  },
  pue: {
    name: 'jouleflow_pue_ratio',
    type: 'gauge',
    help: 'Effective power usage effectiveness over the last interval: (IT + cooling) energy / IT energy; equals the configured PUE while cooling comes from the PUE model.',
  },
  sourceUp: {
    name: 'jouleflow_source_up',
    type: 'gauge',
    help: 'Whether the last read of each reader (and device) succeeded: 1 up, 0 down or absent. reader names the source that reads (rapl, nvml, snmp:crac-1...).',
  },
  sourceErrors: {
    name: 'jouleflow_source_errors_total',
    type: 'counter',
    help: "Failed or discarded reads per reader and reason (timeout, read, permission, counter_reset...); reader is a source, or the exporter's own jobs, ledger or sampler.",
  },
  jobsRejected: {
    name: 'jouleflow_jobs_rejected_total',
    type: 'counter',
    help: 'Jobs refused (API or discovery) per reason: cap (over the live-job cap), invalid, duplicate.',
  },
  jobsLive: {
    name: 'jouleflow_jobs',
    type: 'gauge',
    help: 'Jobs exposed in the live metrics: running, or ended and kept for the retention window.',
  },
} satisfies Record<string, Family>;

export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return String(v);
}

function labelText(labels: Record<string, string>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) parts.push(`${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** HELP and TYPE lines; OpenMetrics names a counter family without `_total` and escapes quotes in HELP. */
function header(f: Family, format: Format): string {
  if (format === 'prometheus') {
    const help = f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
    return `# HELP ${f.name} ${help}\n# TYPE ${f.name} ${f.type}\n`;
  }
  const name = f.type === 'counter' ? f.name.replace(/_total$/, '') : f.name;
  const help = f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return `# HELP ${name} ${help}\n# TYPE ${name} ${f.type}\n`;
}

interface JobPrefixes {
  energy: Map<string, string>;
  power: Record<string, string>;
  info: string;
  start: string;
  end: string;
}

const UNATTRIBUTED_LABELS: JobLabels = Object.freeze({ job_id: 'unattributed', job_name: '', user: '', scheduler: '' });

export class ExpositionRenderer {
  private readonly nodePrefixes = new WeakMap<NodeSeriesLabels, [energy: string, power: string]>();
  private readonly jobPrefixes = new WeakMap<JobLabels, JobPrefixes>();

  /** The snapshot's families, then the registry's; ends with `# EOF` in OpenMetrics. */
  async render(snap: TickSnapshot, registry: Registry | undefined, format: Format): Promise<string> {
    // The snapshot never changes, so the text can be written in slices, letting scrapes and the
    // sampler through between them (20 000 series take tens of ms on a loaded 2-core machine).
    const families: string[] = [];
    for (const step = this.write(snap, format, families); !step.next().done;) await yieldToLoop();
    if (registry) families.push(...(await registryFamilies(registry, format)));
    return format === 'prometheus' ? families.join('\n') : families.join('') + '# EOF\n';
  }

  /** Each family's text, ending in a newline. */
  snapshotFamilies(snap: TickSnapshot, format: Format): string[] {
    const out: string[] = [];
    for (const step = this.write(snap, format, out); !step.next().done;);
    return out;
  }

  /** Writes the families into `out`, pausing (yield) every SLICE series. */
  private *write(snap: TickSnapshot, format: Format, out: string[]): Generator<void> {
    let n = 0;
    const family = (f: Family, samples: string[]) => out.push(header(f, format) + samples.join(''));

    const energy: string[] = [];
    const power: string[] = [];
    for (const s of snap.node) {
      const [e, p] = this.nodePrefix(s.labels);
      energy.push(e + formatValue(s.joules) + '\n');
      if (s.watts !== undefined) power.push(p + formatValue(s.watts) + '\n');
      if (++n % SLICE === 0) yield;
    }
    family(FAMILIES.nodeEnergy, energy);
    family(FAMILIES.nodePower, power);

    const jobEnergy: string[] = [];
    const jobPower: string[] = [];
    const info: string[] = [];
    const start: string[] = [];
    const end: string[] = [];
    const work: string[] = [];
    for (const j of snap.jobs) {
      const px = this.jobPrefix(j.labels);
      for (const c of COMPONENTS) {
        for (const [method, joules] of Object.entries(j.joules[c]))
          jobEnergy.push(energyPrefix(px, j.labels, c, method) + formatValue(joules) + '\n');
      }
      if (j.watts && j.endMs === undefined) for (const c of COMPONENTS) jobPower.push(px.power[c] + formatValue(j.watts[c]) + '\n');
      info.push(px.info);
      start.push(px.start + formatValue(j.startMs / 1000) + '\n');
      if (j.endMs !== undefined) end.push(px.end + formatValue(j.endMs / 1000) + '\n');
      for (const [unit, total] of Object.entries(j.work ?? {}))
        work.push(`${FAMILIES.jobWork.name}${labelText({ job_id: j.labels.job_id, unit })} ${formatValue(total)}\n`);
      if (++n % (SLICE / 8) === 0) yield;
    }
    const un = this.jobPrefix(UNATTRIBUTED_LABELS);
    for (const c of COMPONENTS) {
      jobEnergy.push(energyPrefix(un, UNATTRIBUTED_LABELS, c, 'measured') + formatValue(snap.unattributed.joules[c]) + '\n');
      jobPower.push(un.power[c] + formatValue(snap.unattributed.watts[c]) + '\n');
    }
    family(FAMILIES.jobEnergy, jobEnergy);
    family(FAMILIES.jobPower, jobPower);
    family(FAMILIES.jobInfo, info);
    family(FAMILIES.jobStart, start);
    family(FAMILIES.jobEnd, end);
    family(FAMILIES.jobWork, work);
    family(FAMILIES.pue, snap.pue === undefined ? [] : [`${FAMILIES.pue.name} ${formatValue(snap.pue)}\n`]);

    const up: string[] = [];
    for (const s of snap.sources) {
      for (const [device, v] of s.devices) up.push(`${FAMILIES.sourceUp.name}${labelText({ reader: s.name, device })} ${v}\n`);
    }
    family(FAMILIES.sourceUp, up);
    const errors: string[] = [];
    for (const [key, n] of snap.errors) {
      const [reader, reason] = key.split('\u0000');
      errors.push(`${FAMILIES.sourceErrors.name}${labelText({ reader, reason })} ${n}\n`);
    }
    family(FAMILIES.sourceErrors, errors);
    family(
      FAMILIES.jobsRejected,
      [...snap.jobsRejected].map(([reason, n]) => `${FAMILIES.jobsRejected.name}${labelText({ reason })} ${n}\n`),
    );
    const running = snap.jobs.filter((j) => j.endMs === undefined).length;
    family(FAMILIES.jobsLive, [
      `${FAMILIES.jobsLive.name}{state="running"} ${running}\n`,
      `${FAMILIES.jobsLive.name}{state="ended"} ${snap.jobs.length - running}\n`,
    ]);
  }

  private nodePrefix(l: NodeSeriesLabels): [string, string] {
    let p = this.nodePrefixes.get(l);
    if (!p) {
      const labels = labelText({ component: l.component, device: l.device, source: l.source });
      p = [`${FAMILIES.nodeEnergy.name}${labels} `, `${FAMILIES.nodePower.name}${labels} `];
      this.nodePrefixes.set(l, p);
    }
    return p;
  }

  private jobPrefix(l: JobLabels): JobPrefixes {
    let p = this.jobPrefixes.get(l);
    if (!p) {
      const id = `job_id="${escapeLabel(l.job_id)}"`;
      const power: Record<string, string> = {};
      for (const c of COMPONENTS) power[c] = `${FAMILIES.jobPower.name}{${id},component="${c}"} `;
      p = {
        energy: new Map(),
        power,
        info: `${FAMILIES.jobInfo.name}${labelText({ ...l })} 1\n`,
        start: `${FAMILIES.jobStart.name}{${id}} `,
        end: `${FAMILIES.jobEnd.name}{${id}} `,
      };
      this.jobPrefixes.set(l, p);
    }
    return p;
  }
}

function energyPrefix(px: JobPrefixes, l: JobLabels, component: string, method: string): string {
  const key = `${component}\u0000${method}`;
  let p = px.energy.get(key);
  if (p === undefined) {
    p = `${FAMILIES.jobEnergy.name}${labelText({ job_id: l.job_id, component, method })} `;
    px.energy.set(key, p);
  }
  return p;
}

/** A prom-client registry's families in either format, from the metrics' public `get()` data. */
async function registryFamilies(registry: Registry, format: Format): Promise<string[]> {
  const out: string[] = [];
  // The registry's array holds the metric objects themselves (typed as plain MetricObject).
  for (const metric of registry.getMetricsAsArray() as unknown as Metric[]) {
    const data = await metric.get();
    const type = String(data.type) as Family['type'];
    // prom-client names counters with `_total` in `name` already.
    const lines = [header({ name: data.name, type, help: data.help }, format)];
    for (const v of data.values) {
      const labels: Record<string, string> = {};
      for (const [k, x] of Object.entries(v.labels ?? {})) if (x !== undefined) labels[k] = String(x);
      const name = (v as { metricName?: string }).metricName ?? data.name;
      lines.push(`${name}${labelText(labels)} ${formatValue(v.value)}\n`);
    }
    out.push(lines.join(''));
  }
  return out;
}
