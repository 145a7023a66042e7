import type { Metric, Registry } from 'prom-client';
import type { Component, JobLabels } from './core';
import { COMPONENTS } from './core';
import type { NodeSeriesLabels, TickSnapshot } from './snapshot';
import { ByPosition, ByteWriter, SeriesLine, formatValue } from './exposition-lines';
import { yieldToLoop } from './util/async';

/**
 * The exposition of a TickSnapshot, in the Prometheus text format or OpenMetrics, written
 * directly as UTF-8 bytes (neither format derived from the other; they differ only in HELP/TYPE
 * lines, so both share one writing of the samples per snapshot). A pure function of the snapshot
 * plus caches of each series' line (exposition-lines.ts): the `name{labels} ` prefix made once per
 * series lifetime (keyed by the series' label object, which lives as long as the series) and the
 * last value's text, so a tick formats only the numbers that changed.
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

interface NodeLines {
  energy: SeriesLine;
  power: SeriesLine;
}

/** A job's series lines, made when the job first appears and dropped with its labels object. */
class JobLines {
  readonly power = {} as Record<Component, SeriesLine>;
  readonly info: Buffer;
  readonly start: SeriesLine;
  readonly end: SeriesLine;
  /** Per component, a line per method: one or two, so a scan beats hashing. */
  private readonly energyLines = {} as Record<Component, Array<readonly [method: string, line: SeriesLine]>>;
  private readonly workLines = new Map<string, SeriesLine>();

  constructor(private readonly labels: JobLabels) {
    const id = `job_id="${escapeLabel(labels.job_id)}"`;
    for (const c of COMPONENTS) this.power[c] = new SeriesLine(`${FAMILIES.jobPower.name}{${id},component="${c}"} `);
    this.info = Buffer.from(`${FAMILIES.jobInfo.name}${labelText({ ...labels })} 1\n`);
    this.start = new SeriesLine(`${FAMILIES.jobStart.name}{${id}} `);
    this.end = new SeriesLine(`${FAMILIES.jobEnd.name}{${id}} `);
  }

  energy(component: Component, method: string): SeriesLine {
    const lines = (this.energyLines[component] ??= []);
    for (const [m, l] of lines) if (m === method) return l;
    const l = new SeriesLine(`${FAMILIES.jobEnergy.name}${labelText({ job_id: this.labels.job_id, component, method })} `);
    lines.push([method, l]);
    return l;
  }

  work(unit: string): SeriesLine {
    let l = this.workLines.get(unit);
    if (!l) this.workLines.set(unit, (l = new SeriesLine(`${FAMILIES.jobWork.name}${labelText({ job_id: this.labels.job_id, unit })} `)));
    return l;
  }
}

/** A family and its sample lines in UTF-8, the same in both formats. */
type FamilySamples = readonly [family: Family, samples: Buffer];

/** Each family's HELP and TYPE lines in UTF-8, per format. */
const HEADERS = { prometheus: new WeakMap<Family, Buffer>(), openmetrics: new WeakMap<Family, Buffer>() };

function headerBytes(f: Family, format: Format): Buffer {
  let b = HEADERS[format].get(f);
  if (!b) HEADERS[format].set(f, (b = Buffer.from(header(f, format))));
  return b;
}

const NEWLINE = Buffer.from('\n');
const EOF = Buffer.from('# EOF\n');
const UNATTRIBUTED_LABELS: JobLabels = Object.freeze({ job_id: 'unattributed', job_name: '', user: '', scheduler: '' });

export class ExpositionRenderer {
  private readonly nodeLines = new WeakMap<NodeSeriesLabels, NodeLines>();
  /** Node series keep their order from tick to tick: their lines by position spare most lookups. */
  private readonly nodeAt = new ByPosition<NodeSeriesLabels, NodeLines>();
  private readonly jobLines = new WeakMap<JobLabels, JobLines>();
  /** Each source's devices' lines (source_up), by position in its device list. */
  private readonly deviceLines = new Map<string, ByPosition<string, SeriesLine>>();
  /** Each family's last finished writer: the next one copies unchanged lines from it. */
  private readonly writers = new Map<string, ByteWriter>();
  /** The latest snapshot's samples: both formats (and concurrent scrapes) share one writing. */
  private latest: { snap: TickSnapshot; samples: Promise<FamilySamples[]> } | undefined;

  /**
   * The snapshot's families, then the registry's, in UTF-8 (what /metrics sends); ends with
   * `# EOF` in OpenMetrics. Only the HELP and TYPE lines differ between the formats.
   */
  async renderBytes(snap: TickSnapshot, registry: Registry | undefined, format: Format): Promise<Buffer> {
    const parts: Buffer[] = [];
    // The text format puts a blank line between families; OpenMetrics none.
    const separate = () => (parts.length && format === 'prometheus' ? parts.push(NEWLINE) : 0);
    for (const [f, samples] of await this.samplesOf(snap)) {
      separate();
      parts.push(headerBytes(f, format), samples);
    }
    for (const family of registry ? await registryFamilies(registry, format) : []) {
      separate();
      parts.push(Buffer.from(family));
    }
    if (format === 'openmetrics') parts.push(EOF);
    return Buffer.concat(parts);
  }

  /** `renderBytes` as a string (tests and diagnostics). */
  async render(snap: TickSnapshot, registry: Registry | undefined, format: Format): Promise<string> {
    return (await this.renderBytes(snap, registry, format)).toString('utf8');
  }

  /** Each family's text, ending in a newline. */
  snapshotFamilies(snap: TickSnapshot, format: Format): string[] {
    const out: FamilySamples[] = [];
    for (const step = this.write(snap, out); !step.next().done;);
    return out.map(([f, samples]) => header(f, format) + samples.toString('utf8'));
  }

  private samplesOf(snap: TickSnapshot): Promise<FamilySamples[]> {
    if (this.latest?.snap === snap) return this.latest.samples;
    // The snapshot never changes, so its samples can be written in slices, letting scrapes and the
    // sampler through between them (20 000 series take milliseconds on a loaded 2-core machine).
    const samples = (async () => {
      const out: FamilySamples[] = [];
      for (const step = this.write(snap, out); !step.next().done;) await yieldToLoop();
      return out;
    })();
    this.latest = { snap, samples };
    return samples;
  }

  /** Writes each family's samples into `out`, pausing (yield) every SLICE series. */
  private *write(snap: TickSnapshot, out: FamilySamples[]): Generator<void> {
    let n = 0;
    const writers = this.writers;
    const writer = (f: Family) => new ByteWriter(writers.get(f.name));
    const family = (f: Family, samples: ByteWriter | string[]) => {
      if (samples instanceof ByteWriter) {
        out.push([f, samples.result()]);
        writers.set(f.name, samples);
      } else out.push([f, Buffer.from(samples.join(''))]);
    };

    const energy = writer(FAMILIES.nodeEnergy);
    const power = writer(FAMILIES.nodePower);
    const nodeLinesOf = (l: NodeSeriesLabels) => this.nodeLinesOf(l);
    for (let i = 0; i < snap.node.length; i++) {
      const s = snap.node[i];
      const lines = this.nodeAt.get(i, s.labels, nodeLinesOf);
      lines.energy.write(energy, s.joules);
      if (s.watts !== undefined) lines.power.write(power, s.watts);
      if (++n % SLICE === 0) yield;
    }
    this.nodeAt.truncate(snap.node.length);
    family(FAMILIES.nodeEnergy, energy);
    family(FAMILIES.nodePower, power);

    const jobEnergy = writer(FAMILIES.jobEnergy);
    const jobPower = writer(FAMILIES.jobPower);
    const info = writer(FAMILIES.jobInfo);
    const start = writer(FAMILIES.jobStart);
    const end = writer(FAMILIES.jobEnd);
    const work = writer(FAMILIES.jobWork);
    for (const j of snap.jobs) {
      const lines = this.jobLinesOf(j.labels);
      for (const c of COMPONENTS) {
        const joules = j.joules[c];
        for (const method in joules) lines.energy(c, method).write(jobEnergy, joules[method]);
      }
      if (j.watts && j.endMs === undefined) for (const c of COMPONENTS) lines.power[c].write(jobPower, j.watts[c]);
      info.bytes(lines.info);
      lines.start.write(start, j.startMs / 1000);
      if (j.endMs !== undefined) lines.end.write(end, j.endMs / 1000);
      if (j.work) for (const unit in j.work) lines.work(unit).write(work, j.work[unit]);
      if (++n % (SLICE / 8) === 0) yield;
    }
    const un = this.jobLinesOf(UNATTRIBUTED_LABELS);
    for (const c of COMPONENTS) {
      un.energy(c, 'measured').write(jobEnergy, snap.unattributed.joules[c]);
      un.power[c].write(jobPower, snap.unattributed.watts[c]);
    }
    family(FAMILIES.jobEnergy, jobEnergy);
    family(FAMILIES.jobPower, jobPower);
    family(FAMILIES.jobInfo, info);
    family(FAMILIES.jobStart, start);
    family(FAMILIES.jobEnd, end);
    family(FAMILIES.jobWork, work);
    family(FAMILIES.pue, snap.pue === undefined ? [] : [`${FAMILIES.pue.name} ${formatValue(snap.pue)}\n`]);

    const up = writer(FAMILIES.sourceUp);
    for (const s of snap.sources) {
      const devices = this.devicesOf(s.name);
      const line = (device: string) => new SeriesLine(`${FAMILIES.sourceUp.name}${labelText({ reader: s.name, device })} `);
      for (let i = 0; i < s.devices.length; i++) {
        const [device, v] = s.devices[i];
        devices.get(i, device, line).write(up, v);
        if (++n % SLICE === 0) yield;
      }
      devices.truncate(s.devices.length);
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

  private nodeLinesOf(l: NodeSeriesLabels): NodeLines {
    let lines = this.nodeLines.get(l);
    if (!lines) {
      const labels = labelText({ component: l.component, device: l.device, source: l.source });
      lines = {
        energy: new SeriesLine(`${FAMILIES.nodeEnergy.name}${labels} `),
        power: new SeriesLine(`${FAMILIES.nodePower.name}${labels} `),
      };
      this.nodeLines.set(l, lines);
    }
    return lines;
  }

  private jobLinesOf(l: JobLabels): JobLines {
    let lines = this.jobLines.get(l);
    if (!lines) this.jobLines.set(l, (lines = new JobLines(l)));
    return lines;
  }

  private devicesOf(source: string): ByPosition<string, SeriesLine> {
    let d = this.deviceLines.get(source);
    if (!d) this.deviceLines.set(source, (d = new ByPosition()));
    return d;
  }
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
