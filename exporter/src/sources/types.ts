/**
 * The one interface every source implements (like node_exporter's collectors).
 *
 * A source only reads hardware or kernel state and reports it in physical units; turning
 * readings into joules (deltas, wraparound, resets, integration) is the energy model's job
 * (model/energy.ts), so every source gets the same counter semantics.
 */

export const COMPONENTS = ['compute', 'transmit', 'store', 'cooling'] as const;
export type Component = (typeof COMPONENTS)[number];

/** What kind of device a reading comes from; attribution splits each domain by its own rule. */
export type Domain = 'gpu' | 'cpu' | 'dram' | 'disk' | 'nic' | 'cooling' | 'facility';

interface ReadingBase {
  component: Component;
  domain: Domain;
  /** Stable device name used as the `device` label, e.g. "package-0", "nvme0n1", "eth0", "gpu0". */
  device: string;
  /** The `source` label: which method produced the number ("rapl", "model", "nvml", "nvml-power", "snmp"...). */
  source: string;
}

/** A cumulative hardware energy counter, in joules. */
export interface CounterReading extends ReadingBase {
  kind: 'counter';
  joules: number;
  /** The counter wraps to 0 after this many joules (RAPL max_energy_range_uj / 1e6). */
  wrapJoules?: number;
  /** Deltas above maxPowerWatts × Δt × safety factor are impossible and treated as resets. */
  maxPowerWatts?: number;
}

/** Instantaneous power in watts at the sample time; integrated by the trapezoid rule. */
export interface PowerReading extends ReadingBase {
  kind: 'power';
  watts: number;
}

/**
 * Mean power in watts since this source's previous reading of the device (a model output
 * such as the CPU utilisation curve): energy = watts × Δt, exactly.
 */
export interface MeanPowerReading extends ReadingBase {
  kind: 'mean_power';
  watts: number;
}

/**
 * Cumulative activity counters (bytes read/written, bytes sent/received) with an energy cost
 * per unit, plus an idle power: ΔE = Σ Δcounter_k · joulesPerUnit_k + idleWatts · Δt.
 */
export interface ActivityReading extends ReadingBase {
  kind: 'activity';
  counters: Record<string, number>;
  joulesPerUnit: Record<string, number>;
  idleWatts: number;
  /** Counters wrap at this value (32-bit /proc/net/dev on old kernels); absent = never wrap. */
  wrapAt?: number;
}

export type Reading = CounterReading | PowerReading | MeanPowerReading | ActivityReading;

/** A device the source failed to read this tick while others of the same source succeeded. */
export interface DeviceError {
  device: string;
  reason: string;
  message: string;
}

/** A process seen on a GPU this tick (NVML), kept for attributing that GPU's energy to jobs. */
export interface GpuProcess {
  /** The GPU's `device` label, matching the GPU's reading. */
  device: string;
  pid: number;
  usedMemoryBytes?: number;
  /** SM utilisation of this process in percent over NVML's last sample window, when reported. */
  smUtilPercent?: number;
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
  /** The `source` label of jouleflow_source_up and friends. */
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

/** Thrown by sources for an expected, explainable failure; `reason` becomes the error counter label. */
export class SourceError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'SourceError';
  }
}
