/**
 * The one interface every source implements (like node_exporter's collectors).
 *
 * A source only reads hardware or kernel state and reports it in physical units; turning
 * readings into joules (deltas, wraparound, resets, integration) is the energy model's job
 * (model/energy.ts), so every source gets the same counter semantics.
 */

import type { GpuProcess, Reading } from '../core';

// The vocabulary moved to core.ts (every layer may import it); re-exported here for sources.
export { COMPONENTS, JOULES_PER_KWH } from '../core';
export type {
  ActivityReading,
  Component,
  CounterReading,
  Domain,
  GpuProcess,
  HeatRemoved,
  MeanPowerReading,
  PowerReading,
  Reading,
} from '../core';

/** A device the source failed to read this tick while others of the same source succeeded. */
export interface DeviceError {
  device: string;
  reason: string;
  message: string;
}

export interface SampleResult {
  readings: Reading[];
  /** Devices that are down this tick (reported as jouleflow_source_up{device} 0). */
  errors?: DeviceError[];
  /** Per-process GPU use, from sources that know it. */
  gpuProcesses?: GpuProcess[];
}

/** Context the sampler hands to every read: the injected clock and an abort signal for timeouts. */
export interface SampleContext {
  /** Milliseconds, from the injected clock. */
  now: number;
  signal: AbortSignal;
}

export interface Source {
  /** The `reader` label of jouleflow_source_up and friends (the `source` label of readings names the method). */
  readonly name: string;
  /**
   * Called once at start-up. Return false (after logging why, once) when the source cannot
   * exist on this machine (no RAPL zones, no NVML library): it is then reported down and not
   * polled again.
   */
  init(): Promise<boolean>;
  sample(ctx: SampleContext): Promise<SampleResult>;
  close?(): Promise<void>;
}

/**
 * Thrown by sources for an expected, explainable failure; `reason` becomes the error counter label.
 * `permanent`: the source learned that it can never answer here (a BMC without DCMI found by a read
 * after a slow start-up probe); the sampler then reports it absent, as after init() returning false,
 * and never polls it again.
 */
export class SourceError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly permanent = false,
  ) {
    super(message);
    this.name = 'SourceError';
  }
}
