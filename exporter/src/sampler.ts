import type { Attribution, JobUsage } from './model/attribution';
import { attribute } from './model/attribution';
import type { CoolingMeters, CoolingModelConfig } from './model/cooling';
import { CoolingAccounting } from './model/cooling';
import type { StepResult } from './model/energy';
import { EnergyModel, itEnergy, totalsByComponent } from './model/energy';
import type { GpuProcess, JobView, Reading } from './core';
import type { Metrics } from './metrics';
import type { SourceView, TickSnapshot } from './snapshot';
import { NodeEnergyTotals } from './snapshot';
import type { Source } from './sources/types';
import { SourceError } from './sources/types';
import { DeadlineError, settleWithin, untilAborted, withDeadline, yieldToLoop } from './util/async';
import type { Logger } from './util/log';
import { performance } from 'perf_hooks';

/**
 * The background sampler: every interval it reads every source (each with its own timeout, all
 * in parallel), feeds the energy model, splits the interval among jobs and publishes one
 * immutable TickSnapshot (snapshot.ts) for the renderers. A slow source never delays the others:
 * a read still running at its timeout is reported down, and no new read of that source starts
 * until the old one settles. A source whose init() is slow joins when it is ready.
 */

export type Clock = () => number;

export interface SourceStatus {
  name: string;
  up: boolean;
  /** False when init() said the source does not exist here. */
  present: boolean;
  lastError?: string;
  devicesDown: string[];
}

/** The jobs part of a snapshot. */
export interface JobsView {
  jobs: readonly JobView[];
  /** Jobs refused per reason. */
  rejected: ReadonlyMap<string, number>;
  /** Failures of the jobs subsystem's own I/O per "source\0reason" (ledger writes). */
  errors: ReadonlyMap<string, number>;
}

/** What the jobs tracker provides each tick (issue: training jobs); absent → all unattributed. */
export interface JobTracker {
  usage(now: number, dtSeconds: number, gpuProcesses: readonly GpuProcess[]): Promise<JobUsage[]>;
  /** Receives every interval's split (ledger, per-job totals). */
  record(step: StepResult, attribution: Attribution): void;
  /** The jobs as the metrics show them after record(). */
  view?(): JobsView;
}

export interface SamplerOptions {
  sources: Source[];
  metrics: Metrics;
  log: Logger;
  intervalMs: number;
  timeoutMs: number;
  cooling: CoolingModelConfig;
  /** Facility meters feeding the measured cooling and its share (model/cooling.ts). */
  meters?: CoolingMeters;
  cpuCount: number;
  clock?: Clock;
  jobs?: JobTracker;
  /** How long a source's init() may take before it is reported down (`init_timeout`); it joins when ready. Default 5 s. */
  initTimeoutMs?: number;
}

interface SourceState {
  source: Source;
  status: SourceStatus;
  /** Sources are read only once their init() said they exist. */
  ready: boolean;
  inFlight?: Promise<unknown>;
  /** Each device's up state ('' is the source as a whole). */
  knownDevices: Map<string, 0 | 1>;
}

const UP_DEVICE = '';
const DEFAULT_INIT_TIMEOUT_MS = 5000;

export class Sampler {
  private readonly model: EnergyModel;
  private lastTickAt: number | undefined;
  private readonly coolingAccounting: CoolingAccounting;
  private readonly states: SourceState[];
  private readonly clock: Clock;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastStep: StepResult | undefined;
  private ticks = 0;
  private readonly totals = new NodeEnergyTotals();
  /** Failed or discarded reads per "source\0reason". */
  private readonly errors = new Map<string, number>();
  private pue: number | undefined;
  private version = 0;
  /** Listeners called after each tick (tests). */
  readonly onTick: Array<(step: StepResult, attribution: Attribution) => void> = [];

  /** The sources this sampler reads (the inventory describes their devices). */
  get sources(): readonly Source[] {
    return this.opts.sources;
  }

  constructor(private readonly opts: SamplerOptions) {
    // Monotonic: a wall-clock step (NTP) must not stretch or shrink an interval.
    this.clock = opts.clock ?? (() => performance.timeOrigin + performance.now());
    // A source that failed is re-baselined on recovery (below); this bound only catches a stalled
    // process (a paused VM), where one trapezoid over minutes would be a guess.
    this.model = new EnergyModel({ maxPowerGapMs: Math.max(5 * opts.intervalMs, 10_000) });
    this.coolingAccounting = new CoolingAccounting(opts.cooling, opts.meters);
    this.states = opts.sources.map((source) => ({
      source,
      status: { name: source.name, up: false, present: true, devicesDown: [] },
      ready: false,
      knownDevices: new Map([[UP_DEVICE, 0]]),
    }));
    // Present from the start at 0, so that increase() sees the first timeout, read error or reset.
    for (const st of this.states) for (const reason of ['timeout', 'read', 'counter_reset']) this.count(st.source.name, reason, 0);
  }

  get statuses(): SourceStatus[] {
    return this.states.map((s) => s.status);
  }

  get last(): StepResult | undefined {
    return this.lastStep;
  }

  /** Landing-page lines: which cooling method is in use and why. */
  get coolingNotices(): string[] {
    return this.coolingAccounting.notices();
  }

  get tickCount(): number {
    return this.ticks;
  }

  private count(source: string, reason: string, n = 1): void {
    const key = `${source}\u0000${reason}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + n);
  }

  /**
   * Initialises every source, each bounded by the init timeout; resolves when all have answered or
   * timed out. A source that fails or is absent is reported down, never fatal; one still
   * initialising at the timeout is down with reason `init_timeout` and joins when its init() ends.
   */
  async init(): Promise<void> {
    const { log } = this.opts;
    const timeoutMs = this.opts.initTimeoutMs ?? DEFAULT_INIT_TIMEOUT_MS;
    await Promise.all(
      this.states.map(async (st) => {
        const name = st.source.name;
        const settle = st.source.init().then(
          (present) => {
            st.status.present = present;
            st.ready = present;
            if (present && st.status.lastError === 'init_timeout') {
              st.status.lastError = undefined;
              log.info('source initialised late; it joins now', { source: name });
            }
          },
          (err: Error) => {
            st.status.present = false;
            st.status.lastError = err.message;
            this.count(name, 'init');
            log.error('source failed to initialise; it stays down', { source: name, err: err.message });
          },
        );
        try {
          await withDeadline(() => settle, timeoutMs);
        } catch (err) {
          if (!(err instanceof DeadlineError)) throw err;
          st.status.lastError = 'init_timeout';
          this.count(name, 'init_timeout');
          log.warn('source is still initialising; it is down until it answers', { source: name, timeout_ms: timeoutMs });
        }
      }),
    );
  }

  /** Ticks every interval, the first one an interval from now (callers tick once before starting). */
  start(): void {
    const loop = async () => {
      const started = this.clock();
      await this.tick();
      if (this.timer === undefined) return;
      const wait = Math.max(0, this.opts.intervalMs - (this.clock() - started));
      this.timer = setTimeout(() => void loop(), wait);
    };
    this.timer = setTimeout(() => void loop(), this.opts.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    // A source must not be closed under a native call still running in a timed-out read.
    const inFlight = this.states.map((s) => s.inFlight).filter((p) => p !== undefined);
    await settleWithin(Promise.allSettled(inFlight), 2000);
    await Promise.all(this.states.map((s) => s.source.close?.().catch(() => undefined)));
  }

  /** Milliseconds since the last completed tick (Infinity before the first). */
  sinceLastTick(): number {
    return this.lastTickAt === undefined ? Infinity : this.clock() - this.lastTickAt;
  }

  /** One sampling step. Exposed so that tests drive the sampler with an injected clock. Never rejects. */
  tick(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.doTick()
      .catch((err: Error) => {
        // One bad tick must not stop sampling: count it, log it, carry on with the next.
        this.count('sampler', 'tick');
        this.opts.log.error('sampler tick failed', { err: err.stack ?? err.message });
        this.publish(this.lastStep?.dt ?? 0);
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** `deadline`: the tick's one timeout signal, shared by every source read (one timer per tick, not one per source). */
  private async readSource(
    st: SourceState,
    now: number,
    deadline: AbortSignal,
  ): Promise<{ readings: Reading[]; gpu: GpuProcess[]; recovered?: boolean }> {
    const { metrics, log, timeoutMs } = this.opts;
    const name = st.source.name;
    if (!st.ready) return { readings: [], gpu: [] };
    if (st.inFlight) {
      this.count(name, 'timeout');
      return { readings: [], gpu: [] };
    }
    const t0 = process.hrtime.bigint();
    const p = sampleOf(st.source, now, deadline);
    st.inFlight = p.catch(() => undefined).finally(() => (st.inFlight = undefined));
    const read = untilAborted(p, deadline, () => new DeadlineError(timeoutMs));
    try {
      const res = await read.catch((err: unknown) => {
        throw err instanceof DeadlineError ? new SourceError('timeout', err.message) : err;
      });
      metrics.sampleDuration.observe({ reader: name }, Number(process.hrtime.bigint() - t0) / 1e9);
      const recovered = !st.status.up && st.status.lastError !== undefined;
      if (!st.status.up) log.info('source up', { source: name });
      st.status.up = true;
      st.status.lastError = undefined;
      st.knownDevices.set(UP_DEVICE, 1);
      const down = new Set((res.errors ?? []).map((e) => e.device));
      for (const e of res.errors ?? []) {
        this.count(name, e.reason);
        if (!st.status.devicesDown.includes(e.device)) log.warn('device down', { source: name, device: e.device, err: e.message });
      }
      const seen = new Set(res.readings.map((r) => r.device));
      for (const d of seen) st.knownDevices.set(d, down.has(d) ? 0 : 1);
      for (const d of down) st.knownDevices.set(d, 0);
      for (const [d, up] of st.knownDevices) {
        if (d === UP_DEVICE || seen.has(d) || down.has(d)) continue;
        // A device that vanished without an error (unplugged NIC) is reported down once, then dropped.
        if (up === 1) st.knownDevices.set(d, 0);
        else st.knownDevices.delete(d);
      }
      st.status.devicesDown = [...down];
      return { readings: res.readings, gpu: res.gpuProcesses ?? [], recovered };
    } catch (err) {
      const reason = err instanceof SourceError ? err.reason : 'read';
      this.count(name, reason);
      for (const d of st.knownDevices.keys()) st.knownDevices.set(d, 0);
      if (st.status.up || st.status.lastError === undefined) {
        log.warn('source down', { source: name, reason, err: (err as Error).message });
      }
      st.status.up = false;
      st.status.lastError = (err as Error).message;
      if (err instanceof SourceError && err.permanent) {
        // It can never answer here: absent, as after init() returning false, and not polled again.
        st.status.present = false;
        st.ready = false;
        log.warn('source cannot answer on this host; it is no longer polled', { source: name, err: (err as Error).message });
      }
      return { readings: [], gpu: [] };
    }
  }

  /** Job membership reads /proc; a process stuck in D state must not stall sampling. */
  private async jobUsage(jobs: JobTracker, now: number, dt: number, gpu: GpuProcess[]): Promise<JobUsage[]> {
    try {
      return await withDeadline(() => jobs.usage(now, dt, gpu), this.opts.timeoutMs);
    } catch (err) {
      // The model has already taken this interval's readings: a failing tracker must not cost the
      // node its energy too.
      if (err instanceof DeadlineError) {
        this.count('jobs', 'timeout');
        this.opts.log.warn('reading job processes timed out; this interval stays unattributed', { timeout_ms: this.opts.timeoutMs });
      } else {
        this.count('jobs', 'read');
        this.opts.log.warn('reading job processes failed; this interval stays unattributed', { err: (err as Error).message });
      }
      return [];
    }
  }

  private async doTick(): Promise<void> {
    const { jobs } = this.opts;
    const now = this.clock();
    const deadline = AbortSignal.timeout(this.opts.timeoutMs);
    const results = await Promise.all(this.states.map((st) => this.readSource(st, now, deadline)));
    // Between phases the tick lets waiting scrapes through (a big node spends ms in each).
    await yieldToLoop();
    const readings = results.flatMap((r) => r.readings);
    // Errors are counted under the Source's name: the `reader` label of jouleflow_source_up.
    const origin = new Map<string, string>();
    results.forEach((r, i) => r.readings.forEach((x) => origin.set(`${x.source}\u0000${x.device}`, this.states[i].source.name)));
    const gpu = results.flatMap((r) => r.gpu);
    // A power series bridges a short outage (a missed read) with the trapezoid; the model
    // re-baselines only after maxPowerGapMs (model/energy.ts), so a missed read loses nothing.
    this.coolingAccounting.prepare(readings, this.model);
    const step = this.model.step(now, readings);
    await yieldToLoop();
    for (const e of step.events) {
      if (e.reason === 'counter_wrap') continue;
      const source = origin.get(`${e.source}\u0000${e.device}`) ?? e.source;
      this.count(source, e.reason);
      const what = e.reason === 'counter_reset' ? 'counter went backwards or jumped; interval dropped' : 'non-finite reading dropped';
      this.opts.log.warn(what, { source, device: e.device });
    }
    // Cooling: meter series (domain "cooling") × this node's share, IT meters (domain "facility")
    // only for the share, or the PUE/COP model where no meter answers.
    const totals = totalsByComponent(step.series);
    this.coolingAccounting.apply(step.series, itEnergy(totals), step.dt, this.model);
    const usage = jobs && step.dt > 0 ? await this.jobUsage(jobs, now, step.dt, gpu) : [];
    const attribution = attribute(step.series, usage, { cpuCapacitySeconds: this.opts.cpuCount * step.dt });
    try {
      jobs?.record(step, attribution);
    } catch (err) {
      this.count('jobs', 'record');
      this.opts.log.warn('recording job energy failed', { err: (err as Error).message });
    }
    const after = totalsByComponent(step.series);
    const it = itEnergy(after);
    // Known only once an interval with IT energy has passed: nothing is published before.
    if (step.dt > 0 && it > 0) this.pue = (it + after.cooling) / it;
    const node = this.totals.add(step, attribution);
    this.publish(step.dt, node);
    this.lastTickAt = this.clock();
    this.lastStep = step;
    this.ticks++;
    for (const l of this.onTick) l(step, attribution);
  }

  private lastNode: ReturnType<NodeEnergyTotals['add']> | undefined;

  /** Builds this tick's snapshot and hands it to the renderers in one assignment. */
  private publish(dt: number, node = this.lastNode): void {
    this.lastNode = node;
    const jobsView = this.opts.jobs?.view?.();
    const errors = new Map(this.errors);
    for (const [k, n] of jobsView?.errors ?? []) errors.set(k, (errors.get(k) ?? 0) + n);
    const sources: SourceView[] = this.states.map((st) => ({
      name: st.source.name,
      present: st.status.present,
      up: st.status.up,
      lastError: st.status.lastError,
      devices: [...st.knownDevices],
      devicesDown: [...st.status.devicesDown],
    }));
    const snap: TickSnapshot = Object.freeze({
      version: ++this.version,
      t: this.lastStep?.t ?? 0,
      dt,
      node: Object.freeze(node?.node ?? []),
      jobs: Object.freeze([...(jobsView?.jobs ?? [])]),
      unattributed: node?.unattributed ?? { joules: zeroes(), watts: zeroes() },
      pue: this.pue,
      sources: Object.freeze(sources),
      errors,
      jobsRejected: jobsView?.rejected ?? new Map(),
    });
    this.opts.metrics.publish(snap);
  }
}

/** A source's read as a promise, also when sample() throws before returning one. */
function sampleOf(source: Source, now: number, signal: AbortSignal): ReturnType<Source['sample']> {
  try {
    return source.sample({ now, signal });
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

function zeroes(): { compute: number; transmit: number; store: number; cooling: number } {
  return { compute: 0, transmit: 0, store: 0, cooling: 0 };
}
