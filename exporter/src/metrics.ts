import { promisify } from 'util';
import { gzip } from 'zlib';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Attribution } from './model/attribution';
import { UNATTRIBUTED } from './model/attribution';
import type { StepResult } from './model/energy';
import { COMPONENTS } from './sources/types';
import { renderSliced } from './exposition';
import { VERSION } from './version';

/**
 * Every metric jouleflow exposes (design §3), in one place. The sampler updates them once per
 * tick; scrapes serve a text rendered once per tick (lazily, single-flight) from a cache.
 */

const PRERENDER_WINDOW_MS = 60_000;
const gzipAsync = promisify(gzip);
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface Rendered {
  text: string;
  gzip?: Buffer;
  contentType: string;
}

export interface JobLabels {
  id: string;
  name: string;
  user?: string;
  scheduler?: string;
}

export class Metrics {
  readonly registry = new Registry();
  private version = 0;
  private readonly cache = new Map<string, { version: number; value: Promise<Rendered> }>();
  private base: { version: number; text: Promise<string> } | undefined;
  /** The step being applied by applyStepSliced, while it is. */
  private applying: Promise<void> | undefined;
  private lastRendered: { version: number; text: string } | undefined;
  /** When the last scrape came: the text is rendered ahead of scrapes only while someone scrapes. */
  private lastScrapeAt = 0;
  /** Node power series set by the last step: those missing from the next one are removed. */
  private powerSeries = new Map<string, Record<'component' | 'device' | 'source', string>>();

  readonly nodeEnergy: Counter<'component' | 'device' | 'source'>;
  readonly nodePower: Gauge<'component' | 'device' | 'source'>;
  readonly jobEnergy: Counter<'job_id' | 'component' | 'method'>;
  readonly jobPower: Gauge<'job_id' | 'component'>;
  readonly jobInfo: Gauge<'job_id' | 'job_name' | 'user' | 'scheduler'>;
  readonly jobStart: Gauge<'job_id'>;
  readonly jobEnd: Gauge<'job_id'>;
  readonly pue: Gauge;
  readonly carbon: Gauge<'zone'>;
  readonly sourceUp: Gauge<'source' | 'device'>;
  readonly sourceErrors: Counter<'source' | 'reason'>;
  readonly sampleDuration: Histogram<'source'>;
  readonly buildInfo: Gauge<'version' | 'node_version' | 'mode'>;
  readonly scrapeCacheHits: Counter;
  readonly jobsRejected: Counter<'reason'>;
  readonly jobsLive: Gauge<'state'>;
  /** Label sets used per job, so that removeJob can drop every series of a job (prom-client removes exact label sets only). */
  private readonly jobSeries = new Map<string, { info?: Record<string, string>; methods: Set<string> }>();

  constructor(mode: 'normal' | 'demo' = 'normal') {
    const registers = [this.registry];
    this.nodeEnergy = new Counter({
      name: 'jouleflow_node_energy_joules_total',
      help: 'Energy used by this node per component and device since the exporter started, in joules.',
      labelNames: ['component', 'device', 'source'],
      registers,
    });
    this.nodePower = new Gauge({
      name: 'jouleflow_node_power_watts',
      help: 'Mean power per component and device over the last sampling interval, in watts.',
      labelNames: ['component', 'device', 'source'],
      registers,
    });
    this.jobEnergy = new Counter({
      name: 'jouleflow_job_energy_joules_total',
      help: 'Energy attributed to each training job per component, in joules; job_id="unattributed" holds idle and non-job work.',
      labelNames: ['job_id', 'component', 'method'],
      registers,
    });
    this.jobPower = new Gauge({
      name: 'jouleflow_job_power_watts',
      help: 'Mean power attributed to each job per component over the last sampling interval, in watts.',
      labelNames: ['job_id', 'component'],
      registers,
    });
    this.jobInfo = new Gauge({
      name: 'jouleflow_job_info',
      help: 'Always 1; labels describe the job. Join with * on(job_id) group_left(job_name).',
      labelNames: ['job_id', 'job_name', 'user', 'scheduler'],
      registers,
    });
    this.jobStart = new Gauge({
      name: 'jouleflow_job_start_time_seconds',
      help: 'Start time of the job since the Unix epoch, in seconds.',
      labelNames: ['job_id'],
      registers,
    });
    this.jobEnd = new Gauge({
      name: 'jouleflow_job_end_time_seconds',
      help: 'End time of the job since the Unix epoch, in seconds (absent while it runs).',
      labelNames: ['job_id'],
      registers,
    });
    this.pue = new Gauge({
      name: 'jouleflow_pue_ratio',
      help: 'Effective power usage effectiveness over the last interval: (IT + cooling) energy / IT energy; equals the configured PUE while cooling comes from the PUE model.',
      registers,
    });
    this.carbon = new Gauge({
      name: 'jouleflow_grid_carbon_intensity_grams_per_kwh',
      help: 'Configured carbon intensity of the grid feeding this node, in grams of CO2-equivalent per kWh.',
      labelNames: ['zone'],
      registers,
    });
    this.sourceUp = new Gauge({
      name: 'jouleflow_source_up',
      help: 'Whether the last read of a source (and device) succeeded: 1 up, 0 down or absent.',
      labelNames: ['source', 'device'],
      registers,
    });
    this.sourceErrors = new Counter({
      name: 'jouleflow_source_errors_total',
      help: 'Failed or discarded reads per source and reason (timeout, read, permission, counter_reset...).',
      labelNames: ['source', 'reason'],
      registers,
    });
    this.sampleDuration = new Histogram({
      name: 'jouleflow_sample_duration_seconds',
      help: 'Time taken to read each source, in seconds.',
      labelNames: ['source'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.buildInfo = new Gauge({
      name: 'jouleflow_build_info',
      help: 'Always 1; labels give the exporter version, the Node.js version and the mode (normal or demo).',
      labelNames: ['version', 'node_version', 'mode'],
      registers,
    });
    this.scrapeCacheHits = new Counter({
      name: 'jouleflow_scrape_cache_hits_total',
      help: 'Scrapes served from the text rendered for the current sampler tick.',
      registers,
    });
    this.jobsRejected = new Counter({
      name: 'jouleflow_jobs_rejected_total',
      help: 'Jobs refused (API or discovery) per reason: cap (over the live-job cap), invalid, duplicate.',
      labelNames: ['reason'],
      registers,
    });
    this.jobsLive = new Gauge({
      name: 'jouleflow_jobs',
      help: 'Jobs exposed in the live metrics: running, or ended and kept for the retention window.',
      labelNames: ['state'],
      registers,
    });
    this.jobsRejected.inc({ reason: 'cap' }, 0);
    this.buildInfo.set({ version: VERSION, node_version: process.version, mode }, 1);
    this.pue.set(NaN);
  }

  /** Applies one sampler step: node series and the per-job split. */
  applyStep(step: StepResult, attribution: Attribution): void {
    for (const _ of this.applyOps(step, attribution));
  }

  /**
   * The same, yielding to the event loop every `slice` series so that scrapes are answered while a
   * big node (thousands of series) is updated. It waits for a rendering in progress, so no text
   * ever mixes two ticks.
   */
  applyStepSliced(step: StepResult, attribution: Attribution, slice = 1000): Promise<void> {
    const run = (async () => {
      await this.base?.text.catch(() => undefined);
      let n = 0;
      for (const _ of this.applyOps(step, attribution)) if (++n % slice === 0) await yieldToLoop();
    })();
    // Set before the first await: a rendering asked for meanwhile waits for the update (baseText).
    const applying: Promise<void> = run.finally(() => {
      if (this.applying === applying) this.applying = undefined;
    });
    this.applying = applying;
    return applying;
  }

  private *applyOps(step: StepResult, attribution: Attribution): Generator<void> {
    const power = new Map<string, Record<'component' | 'device' | 'source', string>>();
    for (const s of step.series) {
      const labels = { component: s.component, device: s.device, source: s.source };
      this.nodeEnergy.inc(labels, s.joules);
      this.nodePower.set(labels, s.watts);
      power.set(`${s.component}\u0000${s.device}\u0000${s.source}`, labels);
      yield;
    }
    // A device that stopped reporting has no current power; its energy counter stays.
    for (const [key, labels] of this.powerSeries) if (!power.has(key)) this.nodePower.remove(labels);
    this.powerSeries = power;
    const dt = step.dt;
    const apply = (id: string, joules: Record<string, number>, method: Record<string, string>) => {
      const used = this.seriesOf(id);
      for (const c of COMPONENTS) {
        used.methods.add(method[c]);
        this.jobEnergy.inc({ job_id: id, component: c, method: method[c] }, joules[c]);
        this.jobPower.set({ job_id: id, component: c }, dt > 0 ? joules[c] / dt : 0);
      }
    };
    for (const j of attribution.jobs) {
      apply(j.id, j.joules, j.method);
      yield;
    }
    const measured = { compute: 'measured', transmit: 'measured', store: 'measured', cooling: 'measured' };
    apply(UNATTRIBUTED, attribution.unattributed, measured);
  }

  private seriesOf(id: string): { info?: Record<string, string>; methods: Set<string> } {
    let s = this.jobSeries.get(id);
    if (!s) {
      s = { methods: new Set() };
      this.jobSeries.set(id, s);
    }
    return s;
  }

  setJob(job: JobLabels, startSeconds: number, endSeconds?: number): void {
    const info = {
      job_id: job.id,
      job_name: safeLabelValue(job.name),
      user: safeLabelValue(job.user ?? ''),
      scheduler: safeLabelValue(job.scheduler ?? ''),
    };
    const used = this.seriesOf(job.id);
    if (used.info && JSON.stringify(used.info) !== JSON.stringify(info)) this.jobInfo.remove(used.info);
    used.info = info;
    this.jobInfo.set(info, 1);
    this.jobStart.set({ job_id: job.id }, startSeconds);
    if (endSeconds !== undefined) {
      this.jobEnd.set({ job_id: job.id }, endSeconds);
      // An ended job draws no power: its last interval's value must not linger through retention.
      for (const c of COMPONENTS) this.jobPower.remove({ job_id: job.id, component: c });
    }
  }

  /** Sets a job's energy counters to totals from the ledger (a restarted exporter resumes a job). */
  restoreJobEnergy(id: string, totals: Record<string, Record<string, number>>): void {
    const used = this.seriesOf(id);
    for (const [component, byMethod] of Object.entries(totals)) {
      for (const [method, joules] of Object.entries(byMethod)) {
        if (!(joules >= 0)) continue;
        used.methods.add(method);
        this.jobEnergy.inc({ job_id: id, component, method }, joules);
      }
    }
  }

  /** Drops every series of a job (after its retention window). */
  removeJob(id: string): void {
    const used = this.jobSeries.get(id);
    for (const c of COMPONENTS) {
      for (const method of used?.methods ?? []) this.jobEnergy.remove({ job_id: id, component: c, method });
      this.jobPower.remove({ job_id: id, component: c });
    }
    if (used?.info) this.jobInfo.remove(used.info);
    this.jobStart.remove({ job_id: id });
    this.jobEnd.remove({ job_id: id });
    this.jobSeries.delete(id);
  }

  /** Marks the data as changed; if scrapers are around, the new text is rendered right away. */
  invalidate(): void {
    this.version++;
    if (Date.now() - this.lastScrapeAt < PRERENDER_WINDOW_MS) {
      setImmediate(() => void this.baseText().catch(() => undefined));
    }
  }

  /** The plain text of the current version, rendered once (every variant derives from it). */
  private baseText(): Promise<string> {
    if (!this.base || this.base.version !== this.version) {
      // A text begun while a step is being applied would hold part of it: it is begun after the
      // update, once the tick has run to its invalidate() (a turn of the loop later).
      if (this.applying) {
        return this.applying
          .catch(() => undefined)
          .then(yieldToLoop)
          .then(() => this.baseText());
      }
      const version = this.version;
      const text = renderSliced(this.registry);
      this.base = { version, text };
      void text.then(
        (t) => {
          if (!this.lastRendered || this.lastRendered.version < version) this.lastRendered = { version, text: t };
        },
        () => undefined,
      );
    }
    return this.base.text;
  }

  /** The exposition text for this tick, rendered once and shared by concurrent scrapers. */
  render(openMetrics: boolean, gzip: boolean, scrape = true): Promise<Rendered> {
    const key = `${openMetrics ? 'om' : 'prom'}:${gzip ? 'gz' : 'id'}`;
    if (scrape) this.lastScrapeAt = Date.now();
    const hit = this.cache.get(key);
    if (hit && hit.version === this.version) {
      if (scrape) this.scrapeCacheHits.inc();
      return hit.value;
    }
    // While the new tick's text is still being written, a scrape gets the previous tick's
    // (at most one interval old) rather than waiting for it.
    const rendering = this.base && this.base.version === this.version && this.lastRendered?.version !== this.version;
    if (scrape && rendering && this.lastRendered) {
      const prev = this.cache.get(key);
      if (prev && prev.version === this.lastRendered.version) {
        this.scrapeCacheHits.inc();
        return prev.value;
      }
    }
    const version = this.version;
    const value = (async (): Promise<Rendered> => {
      const prom = await this.baseText();
      const text = openMetrics ? toOpenMetrics(prom) : prom;
      return {
        text,
        gzip: gzip ? await gzipAsync(text, { level: 1 }) : undefined,
        contentType: openMetrics ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE,
      };
    })();
    this.cache.set(key, { version, value });
    return value;
  }
}

/**
 * The Prometheus text format as OpenMetrics: counter families are named without `_total` in their
 * HELP/TYPE lines (samples keep it) and the exposition ends with `# EOF`. Done on the text because
 * prom-client renames shared counter objects in place when an OpenMetrics registry renders them,
 * which would strip `_total` from the plain-text format too.
 */
export function toOpenMetrics(prom: string): string {
  const counters = new Set<string>();
  for (const m of prom.matchAll(/^# TYPE (\S+)_total counter$/gm)) counters.add(m[1]);
  // OpenMetrics allows no blank lines (the text format separates families with them):
  // Prometheus rejects the whole scrape otherwise ("INVALID" "\n" is not a valid start token).
  const lines = prom
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const m = /^# (HELP|TYPE) (\S+)_total( .*)$/.exec(line);
      const renamed = m && counters.has(m[2]) ? `# ${m[1]} ${m[2]}${m[3]}` : line;
      // OpenMetrics escapes double quotes in HELP text too.
      return renamed.startsWith('# HELP ') ? renamed.replace(/"/g, '\\"') : renamed;
    });
  return lines.join('\n').trimEnd() + '\n# EOF\n';
}

/**
 * A label value safe to expose: well-formed Unicode (lone surrogates replaced), bounded length.
 * Quotes, backslashes and newlines are escaped by the exposition format itself.
 */
export function safeLabelValue(v: string, max = 256): string {
  const wellFormed = v.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
  if (wellFormed.length <= max) return wellFormed;
  // Cut on a code point boundary: never leave the high half of a surrogate pair behind.
  let end = max - 1;
  const last = wellFormed.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return wellFormed.slice(0, end) + '\u2026';
}
