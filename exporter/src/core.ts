/**
 * The vocabulary every layer shares (sources, model, jobs, metrics): what energy is split into
 * (`Component`), what kind of device a reading comes from (`Domain`), and the readings sources
 * report. It imports nothing, so any module may import it without a cycle.
 */

/** Joules in one kilowatt-hour (3600 s × 1000 W). */
export const JOULES_PER_KWH = 3.6e6;

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

/**
 * Marks a reading as heat a cooling unit removed (thermal joules or watts: an APC InRow's cool
 * output, a CDU's heat load), not the electrical energy it drew. Sources report it as measured;
 * the cooling model (model/cooling.ts) turns each interval's thermal joules into electrical ones
 * through the COP (thermal J / COP = electrical J) and labels the result as its estimate.
 */
export interface HeatRemoved {
  /** The unit's supply-air temperature in °C when the meter reads one: the COP at that temperature is used. */
  supplyAirCelsius?: number;
}

/** A cumulative hardware energy counter, in joules (thermal joules when `heat` is set). */
export interface CounterReading extends ReadingBase {
  kind: 'counter';
  joules: number;
  heat?: HeatRemoved;
  /** The counter wraps to 0 after this many joules (RAPL max_energy_range_uj / 1e6). */
  wrapJoules?: number;
  /** Deltas above maxPowerWatts × Δt × safety factor are impossible and treated as resets (thermal W for heat). */
  maxPowerWatts?: number;
}

/** Instantaneous power in watts at the sample time (thermal watts when `heat` is set); integrated by the trapezoid rule. */
export interface PowerReading extends ReadingBase {
  kind: 'power';
  watts: number;
  heat?: HeatRemoved;
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

/** A process seen on a GPU this tick (NVML), kept for attributing that GPU's energy to jobs. */
export interface GpuProcess {
  /** The GPU's `device` label, matching the GPU's reading. */
  device: string;
  /** The GPU's UUID as NVML reports it ("GPU-…"), so that jobs may name their GPUs by UUID. */
  gpuUuid?: string;
  pid: number;
  usedMemoryBytes?: number;
  /** SM utilisation of this process in percent over NVML's last sample window, when reported. */
  smUtilPercent?: number;
}

/** The labels that name a job on every job series; a new object whenever the job's metadata changes. */
export interface JobLabels {
  readonly job_id: string;
  readonly job_name: string;
  readonly user: string;
  readonly scheduler: string;
}

/** A job as the metrics show it: identity, lifetime, energy so far and power over the last interval. */
export interface JobView {
  readonly labels: JobLabels;
  /** Milliseconds since the epoch. */
  readonly startMs: number;
  readonly endMs?: number;
  /** Joules per component and method ("measured", "estimated"), since the job started. */
  readonly joules: Readonly<Record<Component, Readonly<Record<string, number>>>>;
  /** Mean power per component over the last interval; absent for ended jobs and before a first share. */
  readonly watts?: Readonly<Record<Component, number>>;
  /** Work totals per unit the job reported so far (issue 15), as of this tick. */
  readonly work?: Readonly<Record<string, number>>;
}
