import { JobError } from './errors';
import type { Ledger, LedgerRow } from './ledger';
import type { JobRecord } from './records';
import type { JobReport } from './report';

/**
 * Pages of the job list, ordered by (start, id), so that no request builds an unbounded response:
 * at most 1 000 jobs a page, and an opaque cursor naming where the next page starts.
 */

export interface JobPage {
  jobs: JobReport[];
  next_cursor?: string;
}

export const MAX_PAGE = 1000;

export function listJobs(
  live: ReadonlyMap<string, JobRecord>,
  ledger: Ledger | undefined,
  opts: { limit?: number; cursor?: string },
  report: { live: (j: JobRecord) => JobReport; stored: (row: LedgerRow) => JobReport },
): JobPage {
  const limit = Math.max(1, Math.min(opts.limit ?? 100, MAX_PAGE));
  const after = decodeCursor(opts.cursor);
  let page: Array<{ start: number; id: string; report: () => JobReport }>;
  if (ledger) {
    // Every job is in the ledger from its registration; live ones are shown with their current totals.
    page = ledger.page(after, limit + 1).map((row) => {
      const j = live.get(row.id);
      return { start: row.start, id: row.id, report: () => (j ? report.live(j) : report.stored(row)) };
    });
  } else {
    const later = [...live.values()].filter((j) => !after || j.start > after.start || (j.start === after.start && j.id > after.id));
    later.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    page = later.slice(0, limit + 1).map((j) => ({ start: j.start, id: j.id, report: () => report.live(j) }));
  }
  const out: JobPage = { jobs: page.slice(0, limit).map((e) => e.report()) };
  if (page.length > limit) out.next_cursor = encodeCursor(page[limit - 1].start, page[limit - 1].id);
  return out;
}

function encodeCursor(start: number, id: string): string {
  return Buffer.from(JSON.stringify([start, id])).toString('base64url');
}

function decodeCursor(cursor: string | undefined): { start: number; id: string } | undefined {
  if (!cursor) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string') return { start: v[0], id: v[1] };
  } catch {
    // an invalid cursor is reported below
  }
  throw new JobError('invalid', 'invalid cursor: pass the next_cursor of the previous page');
}
