import { z } from 'zod';

/**
 * The configuration sections the host sources take (`cpu:`, `disks:`, `nics:`): each field, its
 * default and its check defined once, and the sources' config types derived from them (z.output).
 * config.ts composes these into the file's schema; a source never imports the configuration.
 */

/** A finite number ≥ 0 (watts, joules per unit, grams per kWh). */
export const nonNeg = z.number().finite().nonnegative();

/** A regular expression given as a string: compiled at validation, so a bad one names its field. */
const regexText = z.string().superRefine((v, ctx) => {
  try {
    new RegExp(v);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `invalid regular expression: ${(err as Error).message}` });
  }
});

/** Overrides of a disk class's or a disk's energy parameters (diskstats.ts DISK_DEFAULTS). */
const DiskParamsSchema = z
  .object({
    idleWatts: nonNeg.optional(),
    readJoulesPerByte: nonNeg.optional(),
    writeJoulesPerByte: nonNeg.optional(),
  })
  .strict();

/** Overrides of a NIC's energy parameters (netdev.ts NIC_DEFAULTS). */
const NicParamsSchema = z
  .object({
    idleWatts: nonNeg.optional(),
    joulesPerBit: nonNeg.optional(),
  })
  .strict();

export const CpuModelSchema = z
  .object({
    /** Thermal design power of all sockets together, in watts; unknown → tdpWattsPerVcpu × vCPUs. */
    tdpWatts: z.number().finite().positive().optional(),
    tdpWattsPerVcpu: z.number().finite().positive().default(3.5),
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
  .strict();

export const DisksSchema = z
  .object({
    // Virtual and stacked devices whose I/O is already counted on the disks beneath them.
    exclude: regexText.default('^(loop|ram|zram|dm-|md|sr|fd|nbd|rbd|zd|drbd|bcache)\\d*|^nvme\\d+c\\d+n\\d+'),
    ssd: DiskParamsSchema.default({}),
    hdd: DiskParamsSchema.default({}),
    devices: z.record(DiskParamsSchema).default({}),
  })
  .strict();

export const NicsSchema = z
  .object({
    /** Regex of interfaces to include even when virtual. */
    include: regexText.optional(),
    exclude: regexText.default('^(lo|veth.*|docker\\d*|br-.*|virbr\\d*|ifb\\d*|cni\\d*|flannel.*|cali.*|tun\\d*|tap\\d*)$'),
    defaults: NicParamsSchema.default({}),
    devices: z.record(NicParamsSchema).default({}),
  })
  .strict();

export type CpuModelSettings = z.output<typeof CpuModelSchema>;
export type DiskstatsConfig = z.output<typeof DisksSchema>;
export type NetdevConfig = z.output<typeof NicsSchema>;
