import { promises as fsp } from 'fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './util/duration';
import { LOG_LEVELS } from './util/log';

const duration = (min?: number) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      const ms = typeof v === 'number' ? v * 1000 : parseDuration(v);
      if (min !== undefined && ms < min) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be at least ${min}ms, got ${v}` });
        return z.NEVER;
      }
      return ms;
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
      return z.NEVER;
    }
  });

const nonNeg = z.number().finite().nonnegative();

const DiskParams = z
  .object({
    idleWatts: nonNeg.optional(),
    readJoulesPerByte: nonNeg.optional(),
    writeJoulesPerByte: nonNeg.optional(),
  })
  .strict();

const NicParams = z
  .object({
    idleWatts: nonNeg.optional(),
    joulesPerBit: nonNeg.optional(),
  })
  .strict();

export const ConfigSchema = z
  .object({
    web: z
      .object({
        listenAddress: z.string().default(':10042'),
        telemetryPath: z.string().startsWith('/').default('/metrics'),
        jobsTokenFile: z.string().optional(),
      })
      .strict()
      .default({}),
    paths: z
      .object({ sysfs: z.string().default('/sys'), procfs: z.string().default('/proc') })
      .strict()
      .default({}),
    sample: z
      .object({
        /** Milliseconds after parsing; Prometheus-style duration in the file. */
        interval: duration(100).default('1s'),
        /** Per-source read timeout; defaults to 80 % of the interval. */
        timeout: duration(1).optional(),
      })
      .strict()
      .default({}),
    log: z
      .object({
        level: z.enum(LOG_LEVELS as [string, ...string[]]).default('info'),
        format: z.enum(['logfmt', 'json']).default('logfmt'),
      })
      .strict()
      .default({}),
    sources: z
      .object({
        rapl: z.boolean().default(true),
        cpuModel: z.boolean().default(true),
        dramModel: z.boolean().default(true),
        diskstats: z.boolean().default(true),
        netdev: z.boolean().default(true),
        nvml: z.boolean().default(true),
      })
      .strict()
      .default({}),
    cpu: z
      .object({
        /** Thermal design power of all sockets together, in watts; unknown → tdpWattsPerVcpu × vCPUs. */
        tdpWatts: z.number().positive().optional(),
        tdpWattsPerVcpu: z.number().positive().default(3.5),
        /** Teads curve: fraction of TDP drawn at 0/10/50/100 % utilisation. */
        curve: z
          .array(z.tuple([z.number().min(0).max(100), nonNeg]))
          .min(2)
          .default([
            [0, 0.12],
            [10, 0.32],
            [50, 0.75],
            [100, 1.02],
          ]),
      })
      .strict()
      .default({}),
    dram: z
      .object({ wattsPerGigabyte: nonNeg.default(0.392) })
      .strict()
      .default({}),
    disks: z
      .object({
        exclude: z.string().default('^(loop|ram|zram|dm-|md|sr|fd|nbd)\\d*'),
        ssd: DiskParams.default({}),
        hdd: DiskParams.default({}),
        devices: z.record(DiskParams).default({}),
      })
      .strict()
      .default({}),
    nics: z
      .object({
        /** Regex of interfaces to include even when virtual. */
        include: z.string().optional(),
        exclude: z.string().default('^(lo|veth.*|docker\\d*|br-.*|virbr\\d*|ifb\\d*|cni\\d*|flannel.*|cali.*|tun\\d*|tap\\d*)$'),
        defaults: NicParams.default({}),
        devices: z.record(NicParams).default({}),
      })
      .strict()
      .default({}),
    cooling: z
      .object({
        mode: z.enum(['pue', 'cop']).default('pue'),
        /** Uptime Institute 2024 average. */
        pue: z.number().min(1).max(5).default(1.56),
        /** Supply-air temperature for the COP model (Moore et al. 2005). */
        supplyAirCelsius: z.number().min(0).max(40).default(20),
      })
      .strict()
      .default({}),
    carbon: z
      .object({
        zone: z.string().default('unknown'),
        gramsPerKwh: nonNeg.optional(),
      })
      .strict()
      .default({}),
    nvml: z
      .object({ library: z.string().default('libnvidia-ml.so.1') })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Formats zod issues as "field.path: reason" lines so the user sees which field is wrong. */
export function describeIssues(err: z.ZodError, origin: string): string {
  const lines = err.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
  return `invalid configuration in ${origin}:\n${lines.join('\n')}`;
}

export function parseConfig(input: unknown, origin = 'configuration'): Config {
  const result = ConfigSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(describeIssues(result.error, origin));
  return result.data;
}

export async function loadConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message}`);
  }
}

/** Sets a dotted path ("web.listenAddress") inside a plain object, creating parents. */
export function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

/** Parses "host:port", ":port", "[::1]:port" into listen options. */
export function parseListenAddress(addr: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new ConfigError(`web.listenAddress: expected host:port or :port, got "${addr}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`web.listenAddress: port ${port} out of range`);
  const host = m[1] ?? (m[2] || undefined);
  return { host, port };
}

export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
