import { promises as fsp } from 'fs';
import { parseYaml } from './util/yaml';
import { z } from 'zod';
import { CoolingShareSchema, MetersSchema } from './sources/meters/schema';
import { CpuModelSchema, DisksSchema, NicsSchema, nonNeg } from './sources/schema';
import { zodDuration } from './util/duration';
import { LOG_LEVELS } from './util/log';
import { isLoopbackAddress } from './web/loopback';

const duration = zodDuration;

export const ConfigSchema = z
  .object({
    web: z
      .object({
        listenAddress: z
          .string()
          .default(':10042')
          .superRefine((v, ctx) => {
            try {
              parseListenAddress(v);
            } catch (err) {
              ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message.replace(/^web\.listenAddress: /, '') });
            }
          }),
        telemetryPath: z
          .string()
          .regex(/^\/[A-Za-z0-9._~/-]+$/, 'must be a plain path such as /metrics (letters, digits, . _ ~ - /)')
          .refine((p) => !/^\/(api|healthz)(\/|$)/.test(p), 'must not shadow /api or /healthz')
          .default('/metrics'),
        jobsTokenFile: z.string().optional(),
        /** exporter-toolkit web configuration: TLS, basic auth, headers (web/web-config.ts). */
        configFile: z.string().optional(),
        /** Slow clients (web/web-server.ts): time to send the headers, the whole request; idle keep-alive. */
        headerTimeout: duration(100).default('10s'),
        requestTimeout: duration(100).default('60s'),
        keepAliveTimeout: duration(0).default('5s'),
        maxConnections: z.coerce.number().int().positive().max(1_000_000).default(512),
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
      .refine((v) => v.timeout === undefined || v.timeout <= v.interval, {
        message: 'timeout must not exceed the interval (a hanging source would hold up every tick)',
        path: ['timeout'],
      })
      // Resolved here, so that every reader of the configuration sees the timeout in use.
      .transform((v) => ({ interval: v.interval, timeout: v.timeout ?? defaultSampleTimeout(v.interval) }))
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
        infiniband: z.boolean().default(true),
        nvml: z.boolean().default(true),
        amdsmi: z.boolean().default(true),
      })
      .strict()
      .default({}),
    cpu: CpuModelSchema.default({}),
    dram: z
      // Unset: W per DIMM from the inventory, else 0.392 W/GiB (inventory/choices.ts).
      .object({ wattsPerGigabyte: nonNeg.optional() })
      .strict()
      .default({}),
    disks: DisksSchema.default({}),
    nics: NicsSchema.default({}),
    cooling: z
      .object({
        mode: z.enum(['pue', 'cop']).default('pue'),
        /** Uptime Institute 2024 average. */
        pue: z.number().min(1).max(5).default(1.56),
        /** Supply-air temperature for the COP model (Moore et al. 2005). */
        supplyAirCelsius: z.number().min(0).max(40).default(20),
        /** Share of the cooling meters' energy that is this node's: "it-meters" or a constant 0..1 (docs/meters.md). */
        share: CoolingShareSchema.optional(),
      })
      .strict()
      .default({}),
    /** Facility meters: cooling units and the room's IT feeds (docs/meters.md). */
    meters: MetersSchema,
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
    /** The start-up hardware inventory (inventory/): systeminformation, bounded by the timeout. */
    inventory: z
      .object({ enabled: z.boolean().default(true), timeout: duration(100).default('10s') })
      .strict()
      .default({}),
    /** AMD SMI library for AMD Instinct GPUs (sources/amdsmi.ts). */
    amdsmi: z
      .object({ library: z.string().default('libamd_smi.so') })
      .strict()
      .default({}),
    jobs: z
      .object({
        /** Most running jobs at once; more are refused (API 429) and counted. */
        liveCap: z.coerce.number().int().positive().default(1000),
        /** Ended jobs stay in the live metrics this long (so the last increase is scraped). */
        retention: duration(0).default('15m'),
        /** SQLite ledger of per-job totals; empty string = no ledger (in memory only). */
        ledger: z.string().default('/var/lib/jouleflow/jobs.db'),
        /** How often running jobs' totals are written to the ledger (and always at job end). */
        checkpointInterval: duration(0).default('5s'),
        /** Environment variable holding the bearer token for API mutations (web.jobsTokenFile wins). */
        tokenEnv: z.string().default('JOULEFLOW_JOBS_TOKEN'),
        /** Most ended jobs kept in the live metrics and list (oldest go first); the ledger keeps them all. */
        endedCap: z.coerce.number().int().nonnegative().default(1000),
        /** How long ended jobs stay in the ledger ("0" = forever); older rows are pruned hourly. */
        ledgerRetention: duration(0, Infinity).default('90d'),
        discovery: z
          .object({
            slurm: z.boolean().default(true),
            kubernetes: z.boolean().default(true),
            env: z.boolean().default(true),
            /** dcgm-exporter-compatible HPC job mapping directory (one file per GPU index). */
            hpcMappingDir: z.string().optional(),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    // Cooling meters measure the room: this node's part needs a share, constant or from IT meters.
    const cooling = cfg.meters.some((m) => m.role === 'cooling');
    const it = cfg.meters.some((m) => m.role === 'it');
    const issue = (message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cooling', 'share'], message });
    if (cooling && cfg.cooling.share === undefined && !it) {
      issue(
        "cooling meters are configured, but not how much of their energy is this node's: set cooling.share to a constant (0..1) or add meters with role: it (the room's PDUs/UPSes) and share: it-meters",
      );
    }
    if (cfg.cooling.share === 'it-meters' && !it) issue('"it-meters" needs at least one meter with role: it');
  })
  // Defaults that depend on other fields, resolved here so every reader sees the values in use.
  .transform((cfg) => ({ ...cfg, meters: cfg.meters.map((m) => ({ ...m, timeout: meterTimeout(m.timeout, cfg.sample) })) }));

/**
 * One meter read's timeout: as configured, else 70 % of the interval; always below the sampler's
 * per-source timeout, so that the meter reports its own, clearer error first.
 */
function meterTimeout(configured: number | undefined, sample: { interval: number; timeout: number }): number {
  return Math.max(1, Math.min(configured ?? Math.floor(sample.interval * 0.7), Math.floor(sample.timeout * 0.9)));
}

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

/** The default per-source read timeout: 80 % of the interval, leaving the tick time to finish. */
export function defaultSampleTimeout(intervalMs: number): number {
  return Math.max(1, Math.floor(intervalMs * 0.8));
}

export async function loadConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    return (await parseYaml(text)) ?? {};
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

/**
 * Whether a configured listen host is loopback: an address literal is judged as an address
 * (127.0.0.2, ::1, ::ffff:127.0.0.1), never by a text prefix ("127.example.com" is a name). Only
 * `localhost` is taken on trust (RFC 6761); once listening, judge the bound address instead
 * (web/loopback.ts boundToLoopback).
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  return host.toLowerCase() === 'localhost' || isLoopbackAddress(host);
}
