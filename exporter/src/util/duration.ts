import { z } from 'zod';

const UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

/** Parses a Prometheus-style duration ("250ms", "1s", "1h30m") into milliseconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * UNITS_MS[m[2]];
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== s.length) {
    throw new Error(`invalid duration "${text}": expected a number with a unit such as 250ms, 1s, 5m, 1h30m`);
  }
  return total;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)}s`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return h > 0 ? `${h}h${m}m${s}s` : `${m}m${s}s`;
}

/** setTimeout takes at most 2^31 − 1 ms; beyond that Node fires after 1 ms. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** A zod field for a duration: a Prometheus-style string or a number of seconds, to milliseconds. */
export function zodDuration(min?: number, max = MAX_DURATION_MS) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      const ms = typeof v === 'number' ? v * 1000 : parseDuration(v);
      if (!Number.isFinite(ms) || ms > max) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: max === MAX_DURATION_MS ? `must be a finite duration of at most 24d, got ${v}` : `must be a finite duration, got ${v}`,
        });
        return z.NEVER;
      }
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
}
