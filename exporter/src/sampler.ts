import type { Attribution, JobUsage } from './model/attribution';
import { attribute } from './model/attribution';
import type { CoolingMeters, CoolingModelConfig } from './model/cooling';
import { CoolingAccounting } from './model/cooling';
import type { StepResult } from './model/energy';
import { EnergyModel, itEnergy, totalsByComponent } from './model/energy';
import type { Metrics } from './metrics';
import type { GpuProcess, Reading, Source } from './sources/types';
import { SourceError } from './sources/types';
import type { Logger } from './util/log';
import { performance } from 'perf_hooks';

/**
 * The background sampler: every interval it reads every source (each with its own timeout, all
 * in parallel), feeds the energy model, splits the interval among jobs and updates the metrics.
 * A slow source never delays the others: a read still running at its timeout is reported down,
 * and no new read of that source starts until the old one settles.
 */

export type Clock = () => number;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface SourceStatus {
  name: string;
  up: boolean;
  /** False when init() said the source does not exist here. */
  present: boolean;
  lastError?: string;
  devicesDown: string[];
}

/** What the jobs tracker provides each tick (issue: training jobs); absent → all unattributed. */
export interface JobTracker {
  usage(now: number, dtSeconds: number, gpuProcesses: readonly GpuProcess[]): Promise<JobUsage[]>;
  /** Receives every interval's split (ledger, per-job totals). */
  record(step: StepResult, attribution: Attribution): void;
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
}

interface SourceState {
  source: Source;
  status: SourceStatus;
  inFlight?: Promise<unknown>;
  /** Each device's published up state: the gauge is set only when it changes (hot path). */
  knownDevices: Map<string, 0 | 1>;
}

const UP_DEVICE = '';

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
  /** Listeners called after each tick (the landing page, tests). */
  readonly onTick: Array<(step: StepResult, attribution: Attribution) => void> = [];

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
      knownDevices: new Map(),
    }));
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

  /** Initialises every source; one that fails or is absent is reported down, never fatal. */
  async init(): Promise<void> {
    const { metrics, log } = this.opts;
    await Promise.all(
      this.states.map(async (st) => {
        try {
          st.status.present = await st.source.init();
        } catch (err) {
          st.status.present = false;
          st.status.lastError = (err as Error).message;
          metrics.sourceErrors.inc({ source: st.source.name, reason: 'init' });
          log.error('source failed to initialise; it stays down', { source: st.source.name, err: (err as Error).message });
        }
        metrics.sourceUp.set({ source: st.source.name, device: UP_DEVICE }, 0);
        // Present from the start at 0, so that increase() sees the first timeout, read error or reset.
        for (const reason of ['timeout', 'read', 'counter_reset']) metrics.sourceErrors.inc({ source: st.source.name, reason }, 0);
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
    await Promise.race([Promise.allSettled(inFlight), new Promise((r) => setTimeout(r, 2000).unref())]);
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
        this.opts.metrics.sourceErrors.inc({ source: 'sampler', reason: 'tick' });
        this.opts.log.error('sampler tick failed', { err: err.stack ?? err.message });
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private async readSource(st: SourceState, now: number): Promise<{ readings: Reading[]; gpu: GpuProcess[]; recovered?: boolean }> {
    const { metrics, log, timeoutMs } = this.opts;
    const name = st.source.name;
    if (!st.status.present) return { readings: [], gpu: [] };
    if (st.inFlight) {
      metrics.sourceErrors.inc({ source: name, reason: 'timeout' });
      return { readings: [], gpu: [] };
    }
    const ac = new AbortController();
    const t0 = process.hrtime.bigint();
    const read = st.source.sample({ now, signal: ac.signal });
    st.inFlight = read.catch(() => undefined).finally(() => (st.inFlight = undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ac.abort();
        reject(new SourceError('timeout', `no answer within ${timeoutMs}ms`));
      }, timeoutMs);
    });
    try {
      const res = await Promise.race([read, timeout]);
      metrics.sampleDuration.observe({ source: name }, Number(process.hrtime.bigint() - t0) / 1e9);
      const recovered = !st.status.up && st.status.lastError !== undefined;
      if (!st.status.up) log.info('source up', { source: name });
      st.status.up = true;
      st.status.lastError = undefined;
      metrics.sourceUp.set({ source: name, device: UP_DEVICE }, 1);
      const down = new Set((res.errors ?? []).map((e) => e.device));
      for (const e of res.errors ?? []) {
        metrics.sourceErrors.inc({ source: name, reason: e.reason });
        if (!st.status.devicesDown.includes(e.device)) log.warn('device down', { source: name, device: e.device, err: e.message });
      }
      const seen = new Set(res.readings.map((r) => r.device));
      const publish = (d: string, up: 0 | 1) => {
        if (st.knownDevices.get(d) === up) return;
        st.knownDevices.set(d, up);
        metrics.sourceUp.set({ source: name, device: d }, up);
      };
      for (const d of seen) publish(d, down.has(d) ? 0 : 1);
      for (const d of down) publish(d, 0);
      for (const d of st.knownDevices.keys()) {
        if (seen.has(d) || down.has(d)) continue;
        // A device that vanished without an error (unplugged NIC) is reported down once, then dropped.
        publish(d, 0);
        st.knownDevices.delete(d);
      }
      st.status.devicesDown = [...down];
      return { readings: res.readings, gpu: res.gpuProcesses ?? [], recovered };
    } catch (err) {
      const reason = err instanceof SourceError ? err.reason : 'read';
      metrics.sourceErrors.inc({ source: name, reason });
      metrics.sourceUp.set({ source: name, device: UP_DEVICE }, 0);
      for (const d of st.knownDevices.keys()) {
        st.knownDevices.set(d, 0);
        metrics.sourceUp.set({ source: name, device: d }, 0);
      }
      if (st.status.up || st.status.lastError === undefined) {
        log.warn('source down', { source: name, reason, err: (err as Error).message });
      }
      st.status.up = false;
      st.status.lastError = (err as Error).message;
      return { readings: [], gpu: [] };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Job membership reads /proc; a process stuck in D state must not stall sampling. */
  private async jobUsage(jobs: JobTracker, now: number, dt: number, gpu: GpuProcess[]): Promise<JobUsage[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), this.opts.timeoutMs)));
    try {
      const usage = await Promise.race([jobs.usage(now, dt, gpu), timeout]);
      if (usage) return usage;
      this.opts.metrics.sourceErrors.inc({ source: 'jobs', reason: 'timeout' });
      this.opts.log.warn('reading job processes timed out; this interval stays unattributed', { timeout_ms: this.opts.timeoutMs });
      return [];
    } catch (err) {
      // The model has already taken this interval's readings: a failing tracker must not cost the
      // node its energy too.
      this.opts.metrics.sourceErrors.inc({ source: 'jobs', reason: 'read' });
      this.opts.log.warn('reading job processes failed; this interval stays unattributed', { err: (err as Error).message });
      return [];
    } finally {
      clearTimeout(timer);
    }
  }

  private async doTick(): Promise<void> {
    const { metrics, jobs } = this.opts;
    const now = this.clock();
    const results = await Promise.all(this.states.map((st) => this.readSource(st, now)));
    // Between phases the tick lets waiting scrapes through (a big node spends ms in each).
    await yieldToLoop();
    const readings = results.flatMap((r) => r.readings);
    // Errors are counted under the Source's name, the one jouleflow_source_up uses.
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
      metrics.sourceErrors.inc({ source, reason: e.reason });
      const what = e.reason === 'counter_reset' ? 'counter went backwards or jumped; interval dropped' : 'non-finite reading dropped';
      this.opts.log.warn(what, { source, device: e.device });
    }
    // Cooling: meter series (domain "cooling") × this node's share, IT meters (domain "facility")
    // only for the share, or the PUE/COP model where no meter answers.
    const totals = totalsByComponent(step.series);
    this.coolingAccounting.apply(step.series, itEnergy(totals), step.dt, this.model);
    const usage = jobs && step.dt > 0 ? await this.jobUsage(jobs, now, step.dt, gpu) : [];
    const attribution = attribute(step.series, usage, { cpuCapacitySeconds: this.opts.cpuCount * step.dt });
    await metrics.applyStepSliced(step, attribution);
    try {
      jobs?.record(step, attribution);
    } catch (err) {
      metrics.sourceErrors.inc({ source: 'jobs', reason: 'record' });
      this.opts.log.warn('recording job energy failed', { err: (err as Error).message });
    }
    const after = totalsByComponent(step.series);
    const it = itEnergy(after);
    if (step.dt > 0 && it > 0) metrics.pue.set((it + after.cooling) / it);
    metrics.invalidate();
    this.lastTickAt = this.clock();
    this.lastStep = step;
    this.ticks++;
    for (const l of this.onTick) l(step, attribution);
  }
}
