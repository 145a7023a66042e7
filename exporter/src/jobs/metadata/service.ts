import type { Logger } from '../../util/log';
import type { JobMetadata, MetadataResolver } from './types';

/**
 * Asks each job's scheduler for its display metadata, once per job, off the sampling path: at
 * most MAX_IN_FLIGHT lookups at a time, a few retries when the scheduler does not know the job
 * yet (a pod listed a moment after its first process runs), one log line per failing job.
 */

const MAX_IN_FLIGHT = 2;
const RETRY_DELAYS_MS = [2000, 10_000, 30_000];

export class MetadataService {
  private readonly byScheduler = new Map<string, MetadataResolver>();
  /** Job key → attempts made; present from the first request on, so each job is looked up once. */
  private readonly seen = new Map<string, number>();
  private readonly queue: Array<{ scheduler: string; id: string }> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private inFlight = 0;
  private closed = false;

  constructor(
    resolvers: readonly MetadataResolver[],
    private readonly apply: (id: string, meta: JobMetadata) => void,
    private readonly log: Logger,
    private readonly retryDelaysMs: readonly number[] = RETRY_DELAYS_MS,
  ) {
    for (const r of resolvers) this.byScheduler.set(r.scheduler, r);
  }

  get schedulers(): string[] {
    return [...this.byScheduler.keys()];
  }

  /** A job appeared: look it up unless it was already. */
  request(scheduler: string, id: string): void {
    const key = `${scheduler}\0${id}`;
    if (this.closed || !this.byScheduler.has(scheduler) || this.seen.has(key)) return;
    this.seen.set(key, 0);
    this.queue.push({ scheduler, id });
    this.pump();
  }

  /** Resolves when nothing is queued or running (tests, shutdown). */
  async idle(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while ((this.inFlight > 0 || this.queue.length > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    for (const r of this.byScheduler.values()) r.close?.();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const { scheduler, id } = this.queue.shift()!;
      const resolver = this.byScheduler.get(scheduler)!;
      const key = `${scheduler}\0${id}`;
      const attempt = (this.seen.get(key) ?? 0) + 1;
      this.seen.set(key, attempt);
      this.inFlight++;
      resolver
        .resolve(id)
        .then(
          (meta) => {
            if (meta) {
              if (!this.closed) this.apply(id, meta);
            } else this.retry(scheduler, id, attempt, undefined);
          },
          (err: Error) => this.retry(scheduler, id, attempt, err),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }

  private retry(scheduler: string, id: string, attempt: number, err: Error | undefined): void {
    const delay = this.retryDelaysMs[attempt - 1];
    if (delay === undefined || this.closed) {
      this.log.warn('job metadata unavailable: the job keeps its placeholder name', {
        scheduler,
        job_id: id,
        attempts: attempt,
        err: err?.message ?? 'unknown to the scheduler',
      });
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.closed) return;
      this.queue.push({ scheduler, id });
      this.pump();
    }, delay);
    t.unref();
    this.timers.add(t);
  }
}
