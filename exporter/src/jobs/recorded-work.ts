/**
 * The work of a recorded training run, reconstructed from its events, for the demo (issue 15):
 * the GPT-2 trace (test/fixtures/nvidia-h200/training-trace.json) records `train_start`,
 * `checkpoint` (t … t_end, training paused) and `train_end` with its step count, not the tokens
 * themselves. Steps are spread evenly over the training time outside checkpoints; the demo banner
 * must say the token count is reconstructed this way.
 */

/** The recording's batch: 16 sequences of 1 024 tokens per optimizer step. */
export const RECORDED_TOKENS_PER_STEP = 16 * 1024;

export interface TraceEvent {
  /** Seconds on the trace's clock. */
  t: number;
  event: string;
  /** End of a checkpoint pause. */
  t_end?: number;
  /** Steps done, on `train_end`. */
  steps?: number;
}

export interface RecordedWork {
  start: number;
  end: number;
  steps: number;
  /** Whole steps finished by trace time t. */
  stepsAt(t: number): number;
}

/** Throws when the events lack a train_start, or a train_end with its steps. */
export function reconstructSteps(events: readonly TraceEvent[]): RecordedWork {
  const start = events.find((e) => e.event === 'train_start')?.t;
  const endEvent = events.find((e) => e.event === 'train_end');
  if (start === undefined || endEvent?.steps === undefined || endEvent.t <= start) {
    throw new Error('the trace has no train_start, or no train_end with steps after it');
  }
  const end = endEvent.t;
  const pauses = events
    .filter((e) => e.event === 'checkpoint' && e.t_end !== undefined)
    .map((e) => [Math.max(start, e.t), Math.min(end, e.t_end as number)] as const)
    .filter(([a, b]) => b > a);
  // Training seconds between start and t: wall time minus the checkpoint pauses before t.
  const active = (t: number) => {
    const c = Math.min(Math.max(t, start), end);
    return pauses.reduce((s, [a, b]) => s - Math.max(0, Math.min(c, b) - a), c - start);
  };
  const total = active(end);
  const steps = endEvent.steps;
  return { start, end, steps, stepsAt: (t) => Math.floor((steps * active(t)) / total + 1e-9) };
}
