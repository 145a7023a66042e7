import { setImmediate as nextTurn } from 'timers/promises';

/**
 * The exporter's few asynchronous helpers, on the platform's own primitives
 * (`AbortSignal.timeout`, `AbortSignal.any`, `timers/promises`) instead of hand-written races.
 */

/** Lets waiting I/O (scrapes, API calls) through between phases of a long piece of work. */
export function yieldToLoop(): Promise<void> {
  return nextTurn();
}

/** Thrown by `withDeadline` when the deadline passes first. */
export class DeadlineError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms}ms`);
    this.name = 'DeadlineError';
  }
}

/**
 * Settles with `p`, or rejects with `error()` as soon as `signal` aborts, whichever comes first.
 * `p` itself keeps running: callers that must not start a second one meanwhile keep it.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal, error: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(error());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(error());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Runs `work` with a signal that aborts after `ms` (or when `parent` aborts) and settles with
 * whichever comes first: the work's result, or a DeadlineError (the parent's reason when it aborted).
 */
export function withDeadline<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, parent?: AbortSignal): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  const signal = parent ? AbortSignal.any([parent, timeout]) : timeout;
  return untilAborted(work(signal), signal, () => (timeout.aborted ? new DeadlineError(ms) : (signal.reason as Error)));
}

/** Waits for `p` at most `ms`; resolves either way (shutdown waits that must not hang). */
export async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  await withDeadline(() => p, ms).catch(() => undefined);
}
