import { readText } from '../util/fs';
import { pidPath } from '../util/procfs';

/**
 * /proc/PID/environ read off the event loop. Reading another process's environment takes that
 * process's memory-map lock, so a process stuck in D state (a hung NFS mount, common on HPC nodes)
 * blocks the read, as it blocks `ps`. A synchronous read would freeze the whole exporter; here a
 * read runs on libuv's thread pool, at most MAX_IN_FLIGHT at once (the pool has 4 threads and the
 * sources need them too), and the tick waits for them only briefly.
 */

export const PENDING = Symbol('pending');

const MAX_IN_FLIGHT = 2;

interface Entry {
  /** The tick the read was issued in. */
  tick: number;
  value?: string;
  done: boolean;
}

export class EnvironReader {
  private readonly entries = new Map<number, Entry>();
  private readonly queue: Array<{ pid: number; tick: number }> = [];
  private inFlight = 0;
  /** prefetch() calls waiting for the reads to drain. */
  private readonly waiters = new Set<() => void>();
  private stuckSince: number | undefined;

  constructor(
    private readonly procfs: string,
    /** A read that finished after its tick: the tracker reclassifies if the value matters. */
    private readonly late: (pid: number, environ: string | undefined) => void,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Queues reads for `pids` (new processes, and ones to re-read) and waits up to `waitMs` for them. */
  async prefetch(pids: Iterable<number>, tick: number, waitMs: number): Promise<void> {
    for (const pid of pids) {
      const e = this.entries.get(pid);
      if (e && e.tick === tick) continue;
      if (e && !e.done) continue;
      this.entries.set(pid, { tick, done: false });
      this.queue.push({ pid, tick });
    }
    this.pump();
    if (this.drained()) return;
    // Woken by finish() when the last read settles, or by the timer: nothing is left behind.
    let wake: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      wake = resolve;
      this.waiters.add(resolve);
      timer = setTimeout(resolve, waitMs).unref();
    });
    clearTimeout(timer);
    if (wake) this.waiters.delete(wake);
  }

  private drained(): boolean {
    return this.queue.length === 0 && this.inFlight === 0;
  }

  /** The environment read for `pid`, PENDING while its read has not finished, undefined if unreadable. */
  lookup(pid: number): string | undefined | typeof PENDING {
    const e = this.entries.get(pid);
    if (!e || !e.done) return PENDING;
    return e.value;
  }

  /**
   * The process exited. A read still queued or running for it is dropped too: its result must not
   * be applied to a later process that gets the same PID.
   */
  forget(pid: number): void {
    this.entries.delete(pid);
  }

  /** Milliseconds the reads have been blocked (undefined when they flow): for the log. */
  blockedFor(): number | undefined {
    return this.stuckSince === undefined ? undefined : this.clock() - this.stuckSince;
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const { pid, tick } = this.queue.shift()!;
      const e = this.entries.get(pid);
      if (!e || e.tick !== tick || e.done) continue; // forgotten (the process exited) meanwhile
      this.inFlight++;
      this.stuckSince ??= this.clock();
      readText(pidPath(this.procfs, pid, 'environ'), 'latin1').then(
        (text) => this.finish(pid, tick, text),
        () => this.finish(pid, tick, undefined),
      );
    }
    if (this.inFlight === 0) this.stuckSince = undefined;
  }

  private finish(pid: number, tick: number, value: string | undefined): void {
    this.inFlight--;
    this.stuckSince = undefined;
    const e = this.entries.get(pid);
    if (e && e.tick === tick) {
      e.value = value;
      e.done = true;
      this.late(pid, value);
    }
    this.pump();
    if (this.drained()) for (const w of this.waiters) w();
  }
}
