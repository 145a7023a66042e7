import { execFileSync } from 'child_process';
import { existsSync, readFileSync, statSync } from 'fs';
import { join } from 'path';
import type * as Koffi from 'koffi';
import { parseConfig, type ConfigInput } from '../../exporter/src/config';
import { ROOT } from '../nvml/fake-nvml';

/**
 * Helpers for the suites running the exporter against the fake libamd_smi.so (test/fakes/amdsmi),
 * built on demand (gcc) when missing or older than its source, and its traces (test/amdsmi/traces,
 * derived from the shared H200 recordings by test/fakes/amdsmi/make-traces.mjs).
 */

export const FAKE_AMD_DIR = join(ROOT, 'test/fakes/amdsmi');
export const FAKE_AMD_LIBRARY = join(FAKE_AMD_DIR, 'build/libamd_smi.so');
export const AMD_TRACES = join(ROOT, 'test/amdsmi/traces');

export function ensureFakeAmdsmi(): string {
  const src = join(FAKE_AMD_DIR, 'fake_amdsmi.c');
  if (!existsSync(FAKE_AMD_LIBRARY) || statSync(FAKE_AMD_LIBRARY).mtimeMs < statSync(src).mtimeMs) {
    execFileSync('sh', [join(FAKE_AMD_DIR, 'build.sh')], { stdio: 'pipe' });
  }
  return FAKE_AMD_LIBRARY;
}

export const AMD_ENV = [
  'JOULEFLOW_FAKE_AMDSMI_TRACE',
  'JOULEFLOW_FAKE_AMDSMI_SPEED',
  'JOULEFLOW_FAKE_AMDSMI_EPOCH',
  'JOULEFLOW_FAKE_AMDSMI_GPUS',
  'JOULEFLOW_FAKE_AMDSMI_FAULT_GPU',
  'JOULEFLOW_FAKE_AMDSMI_NO_ENERGY',
  'JOULEFLOW_FAKE_AMDSMI_RESET_AT',
  'JOULEFLOW_FAKE_AMDSMI_LOST_AT',
  'JOULEFLOW_FAKE_AMDSMI_HANG_MS',
] as const;
export type AmdEnv = Partial<Record<(typeof AMD_ENV)[number], string>>;

let libc: { setenv: (k: string, v: string, o: number) => number; unsetenv: (k: string) => number } | undefined;

/**
 * Sets the fake's switches with libc's setenv (jest's process.env never reaches getenv, which the
 * fake calls at amdsmi_init; the worker thread shares the process environment). Unlisted ones are unset.
 */
export function setAmdEnv(env: AmdEnv): void {
  if (!libc) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- koffi is loaded lazily, as the exporter does
    const koffi = require('koffi') as typeof Koffi;
    const lib = koffi.load('libc.so.6');
    libc = { setenv: lib.func('int setenv(const char *k, const char *v, int o)'), unsetenv: lib.func('int unsetenv(const char *k)') };
  }
  for (const k of AMD_ENV) {
    const v = env[k];
    if (v === undefined) libc.unsetenv(k);
    else libc.setenv(k, v, 1);
  }
}

export interface AmdTraceGpu {
  market_name: string;
  uuid: string;
  power_cap_w: number;
  samples: Array<[number, number, number, Array<[number, number, number]>]>;
}
export interface AmdTrace {
  derived_from: string;
  counter_resolution_uj: number;
  gpus: AmdTraceGpu[];
}

export function amdTrace(name: string): AmdTrace {
  return JSON.parse(readFileSync(join(AMD_TRACES, name), 'utf8')) as AmdTrace;
}

export function amdTracePath(name: string): string {
  return join(AMD_TRACES, name);
}

/** Seconds from the first sample to the last. */
export function amdDuration(g: AmdTraceGpu): number {
  return g.samples[g.samples.length - 1][0] - g.samples[0][0];
}

/** The energy, in joules, the trace's accumulator says was spent between offsets a and b (the replay rule: last sample at or before). */
export function amdEnergyBetween(trace: AmdTrace, gpu: number, a: number, b: number): number {
  const g = trace.gpus[gpu];
  const at = (x: number) => {
    let acc = g.samples[0][2];
    for (const s of g.samples) {
      if (s[0] - g.samples[0][0] > x) break;
      acc = s[2];
    }
    return acc;
  };
  return ((at(b) - at(a)) * trace.counter_resolution_uj) / 1e6;
}

/** A config with only the AMD source enabled (others optional), pointing at the given library. */
export function amdConfig(library: string, extra: ConfigInput = {}) {
  return parseConfig({
    ...extra,
    web: { listenAddress: '127.0.0.1:0' },
    sources: {
      rapl: false,
      cpuModel: false,
      dramModel: false,
      diskstats: false,
      netdev: false,
      infiniband: false,
      nvml: false,
      amdsmi: true,
      ...extra.sources,
    },
    amdsmi: { library },
    sample: { interval: '1s', ...extra.sample },
  });
}
