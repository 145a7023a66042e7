import { existsSync } from 'fs';
import { join } from 'path';
import { Worker } from 'worker_threads';
import type { Logger } from '../util/log';
import type { NvmlDeviceInfo } from './nvml-reader';
import { NVML_SOURCE } from './nvml-reader';
import type { NvmlAnswer, NvmlLogLine, NvmlProgress, NvmlRequest, NvmlWorkerData } from './nvml-worker';
import type { SampleContext, SampleResult, Source } from './types';
import { SourceError } from './types';

export { DEFAULT_GPU_MAX_WATTS, NVML_POWER_SOURCE, NVML_SOURCE, smUtilByPid, type NvmlDeviceInfo } from './nvml-reader';

/**
 * GPU energy from NVML, read on a worker thread of its own (nvml-worker.ts; the reading logic is
 * nvml-reader.ts). This side bounds every call by a timeout, so a hung driver never holds up
 * start-up, the other sources, or libuv's shared pool (issue 10 §1):
 * - init() waits at most `initWaitMs` for nvmlInit and device discovery; past that it returns
 *   true and discovery goes on in the background: reads fail with reason `init_timeout` until
 *   it completes.
 * - a read is abandoned at the sampler's abort signal or `readTimeoutMs` (reason `timeout`);
 *   while it is still running in the worker, later reads fail at once with `timeout`.
 * - a driver call that has not returned after `stuckMs` gets the worker replaced: it is terminated (its thread
 *   ends when the driver call returns) and a new one starts, re-initialising, once the old one
 *   has exited. At most one abandoned thread exists at a time, so a driver that never returns
 *   costs one thread, not one per tick.
 */

export interface NvmlSourceOptions {
  /** Library to dlopen: a name the loader resolves, or a path. */
  library: string;
  /** How long init() waits for discovery before returning (ms). */
  initWaitMs?: number;
  /** Upper bound of one read when the caller gives no abort signal (ms). */
  readTimeoutMs?: number;
  /** No NVML call returning for this long (ms) gets the worker replaced. */
  stuckMs?: number;
}

interface Pending {
  op: NvmlRequest['op'];
  since: number;
  /** When the worker last reported a returned NVML call for this request. */
  progressAt: number;
  resolve: (a: NvmlAnswer) => void;
}

let bundledWorker: string | undefined;

/**
 * The worker's code: the compiled nvml-worker.js next to this file; when running from the
 * TypeScript sources (jest), that file bundled on the fly by esbuild (a dev dependency).
 */
function spawnWorker(data: NvmlWorkerData): Worker {
  const js = join(__dirname, 'nvml-worker.js');
  if (existsSync(js)) return new Worker(js, { workerData: data });
  if (bundledWorker === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- dev-only path, never in dist
    const esbuild = require('esbuild') as typeof import('esbuild');
    const out = esbuild.buildSync({
      entryPoints: [join(__dirname, 'nvml-worker.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      external: ['koffi'],
      write: false,
    });
    bundledWorker = out.outputFiles[0].text;
  }
  return new Worker(bundledWorker, { eval: true, workerData: data });
}

export class NvmlSource implements Source {
  readonly name = NVML_SOURCE;
  private worker: Worker | undefined;
  /** An abandoned worker's exit: no new worker starts before it (bounds threads to two). */
  private retiring: Promise<void> | undefined;
  private pending: Pending | undefined;
  private nextId = 1;
  private ready = false;
  /** Discovery finished and found nothing usable (after init() had already returned). */
  private absent: string | undefined;
  private closed = false;
  private initialised: Promise<boolean> | undefined;
  private infos: NvmlDeviceInfo[] = [];
  private readonly initWaitMs: number;
  private readonly readTimeoutMs: number;
  private readonly stuckMs: number;

  constructor(
    private readonly opts: NvmlSourceOptions,
    private readonly log: Logger,
  ) {
    this.initWaitMs = opts.initWaitMs ?? 2000;
    this.readTimeoutMs = opts.readTimeoutMs ?? 10_000;
    this.stuckMs = opts.stuckMs ?? 30_000;
  }

  /** The GPUs found at init, with their state as of the latest read. */
  get devices(): readonly NvmlDeviceInfo[] {
    return this.infos;
  }

  /** Threads this source holds now: its worker and at most one abandoned one. */
  get threads(): number {
    return (this.worker ? 1 : 0) + (this.retiring ? 1 : 0);
  }

  /** Idempotent. False when there is no NVML library, no driver or no GPU (answered in time). */
  init(): Promise<boolean> {
    this.initialised ??= this.firstInit();
    return this.initialised;
  }

  private async firstInit(): Promise<boolean> {
    const discovery = this.start();
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), this.initWaitMs)));
    const present = await Promise.race([discovery, waited]);
    clearTimeout(timer);
    if (present !== undefined) return present;
    this.log.warn('NVML did not finish initialising in time; GPUs join when it answers', { wait_ms: this.initWaitMs });
    return true;
  }

  /** A new worker, and discovery on it (in the background). */
  private start(): Promise<boolean> {
    const worker = spawnWorker({ library: this.opts.library });
    this.worker = worker;
    this.ready = false;
    worker.on('message', (m: NvmlAnswer | NvmlLogLine | NvmlProgress) => this.onMessage(worker, m));
    worker.on('error', (err) => this.log.error('NVML worker failed', { err: err.message }));
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      // An unexpected exit: the next read starts a new worker.
      this.worker = undefined;
      this.pending?.resolve({ id: 0, ok: false, reason: 'read', message: 'NVML worker exited' });
      this.pending = undefined;
    });
    worker.unref();
    return this.call('init').then(
      (a) => {
        if (!a.ok) {
          // A replaced worker (stuck driver) is retried by its successor; anything else is final.
          if (a.reason === 'timeout') return false;
          this.log.warn('NVML initialisation failed; no GPU energy from NVML', { err: a.message });
          this.absent = `NVML initialisation failed: ${a.message}`;
          void this.retire();
          return false;
        }
        this.infos = a.devices;
        if (a.present) {
          this.ready = true;
          return true;
        }
        // The reader has logged why; a late "absent" turns every later read into a clear error.
        this.absent = 'NVML found no usable GPU';
        void this.retire();
        return false;
      },
      () => false,
    );
  }

  private onMessage(worker: Worker, m: NvmlAnswer | NvmlLogLine | NvmlProgress): void {
    if ('log' in m) {
      this.log[m.log.level](m.log.msg, m.log.fields);
      return;
    }
    if ('progress' in m) {
      if (worker === this.worker && this.pending) this.pending.progressAt = performance.now();
      return;
    }
    if (worker !== this.worker || !this.pending) return;
    const p = this.pending;
    this.pending = undefined;
    p.resolve(m);
  }

  /** One request to the worker; resolves when the worker answers (which may be never). */
  private call(op: NvmlRequest['op']): Promise<NvmlAnswer> {
    const worker = this.worker;
    if (!worker) return Promise.resolve({ id: 0, ok: false, reason: 'timeout', message: 'NVML worker not running' });
    return new Promise<NvmlAnswer>((resolve) => {
      const id = this.nextId++;
      const now = performance.now();
      this.pending = { op, since: now, progressAt: now, resolve };
      worker.postMessage({ id, op } satisfies NvmlRequest);
    });
  }

  /** Terminates the current worker; its thread ends when its driver call returns. */
  private retire(): Promise<void> {
    const old = this.worker;
    this.worker = undefined;
    this.ready = false;
    this.pending?.resolve({ id: 0, ok: false, reason: 'timeout', message: 'NVML worker replaced' });
    this.pending = undefined;
    if (!old) return Promise.resolve();
    const exited = old.terminate().then(
      () => undefined,
      () => undefined,
    );
    this.retiring = exited.then(() => {
      this.retiring = undefined;
    });
    return this.retiring;
  }

  /**
   * No NVML call returned for stuckMs: replace the worker (once the previous abandoned one is
   * gone). A slow driver whose calls do return (discovery of many GPUs) is left to finish.
   */
  private superviseStuck(): void {
    const p = this.pending;
    if (!p || this.retiring || performance.now() - p.progressAt < this.stuckMs) return;
    this.log.warn('NVML call stuck; replacing the NVML worker', { op: p.op, stuck_ms: Math.round(performance.now() - p.progressAt) });
    void this.retire().then(() => {
      if (!this.closed && !this.worker && !this.absent) void this.start();
    });
  }

  async sample(ctx?: SampleContext): Promise<SampleResult> {
    if (this.closed) throw new SourceError('closed', 'NVML source is closed');
    if (this.absent) throw new SourceError('unavailable', this.absent);
    this.superviseStuck();
    if (this.retiring) throw new SourceError('timeout', 'an NVML call is stuck in the driver; waiting for it to return');
    if (!this.worker) {
      void this.start();
      throw new SourceError('init_timeout', 'NVML worker restarting');
    }
    const p = this.pending;
    if (!this.ready) {
      throw new SourceError('init_timeout', `NVML still initialising (${Math.round(performance.now() - (p?.since ?? 0))} ms)`);
    }
    if (p) throw new SourceError('timeout', `previous NVML ${p.op} still running after ${Math.round(performance.now() - p.since)} ms`);
    const answer = await this.bounded(this.call('sample'), ctx?.signal);
    if (!answer.ok) throw new SourceError(answer.reason, answer.message);
    this.infos = answer.devices;
    return answer.result ?? { readings: [] };
  }

  /** The answer, or a `timeout` error at the abort signal or readTimeoutMs, whichever is first. */
  private bounded(answer: Promise<NvmlAnswer>, signal: AbortSignal | undefined): Promise<NvmlAnswer> {
    return new Promise<NvmlAnswer>((resolve, reject) => {
      const fail = () => {
        clearTimeout(timer);
        reject(new SourceError('timeout', `NVML did not answer within ${Math.round(performance.now() - t0)} ms`));
      };
      const t0 = performance.now();
      const timer = setTimeout(fail, this.readTimeoutMs);
      if (signal?.aborted) fail();
      signal?.addEventListener('abort', fail, { once: true });
      void answer.then((a) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', fail);
        resolve(a);
      });
    });
  }

  /** nvmlShutdown in the worker (bounded), then the worker ends. The library stays loaded. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    if (worker && !this.pending) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.call('close'), new Promise((r) => (timer = setTimeout(r, 3000)))]);
      clearTimeout(timer);
    } else if (worker) {
      this.log.warn('NVML calls still running at shutdown; skipping nvmlShutdown', { op: this.pending?.op });
    }
    // A thread stuck in the driver never exits: do not wait for it past a bound.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.retire(), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
  }
}
