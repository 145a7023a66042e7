import type { Command } from 'commander';
import type { JobReport } from '../jobs/report';
import { formatReport, printable } from '../jobs/report';
import { COMPONENTS, JOULES_PER_KWH } from '../core';
import type { UnitReport } from '../jobs/work';
import { DEFAULT_EXPORTER_URL, apiToken } from './run';
import { formatWorkReport } from './work-file';

/** `jouleflow jobs ls` and `jouleflow jobs show ID`: tables from a running exporter's API. */

interface JobsOptions {
  'exporter.url'?: string;
  json?: boolean;
  all?: boolean;
  tokenFile?: string;
}

/** From another host the job list needs the bearer token; on this one the exporter knows the caller's uid. */
async function get(base: string, p: string, token: string | undefined): Promise<unknown> {
  let res: Response;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    res = await fetch(`${base}${p}`, { headers, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new Error(`no exporter answers at ${base}: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

function kwh(j: number): string {
  return (j / JOULES_PER_KWH).toFixed(6);
}

export function jobsTable(jobs: readonly JobReport[]): string {
  const head = [
    'ID',
    'NAME',
    'STATE',
    'SCHEDULER',
    'DURATION_S',
    ...COMPONENTS.map((c) => `${c.toUpperCase()}_KWH`),
    'TOTAL_KWH',
    'MEAN_W',
  ];
  const rows = jobs.map((j) => [
    j.id,
    printable(j.name),
    j.state,
    printable(j.scheduler),
    j.durationSeconds.toFixed(1),
    ...COMPONENTS.map((c) => kwh(j.energy[c].joules)),
    kwh(j.total.joules),
    j.meanPowerWatts.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** --exporter.url, else JOULEFLOW_EXPORTER_URL, else the default (as `jouleflow run` does). */
function exporterBase(opts: JobsOptions): string {
  return (opts['exporter.url'] ?? process.env.JOULEFLOW_EXPORTER_URL ?? DEFAULT_EXPORTER_URL).replace(/\/+$/, '');
}

/** `jobs show`: the energy report, then energy per unit of work when the exporter reports work. */
export function showReport(r: JobReport & { work?: UnitReport[] }): string {
  const work = Array.isArray(r.work) && r.work.length ? '\n' + formatWorkReport(r.work) : '';
  return formatReport(r) + work;
}

export function addJobsCommand(program: Command): void {
  const jobs = program.command('jobs').description('list and show jobs of a running exporter');
  const common = (c: Command) =>
    c
      .option('--exporter.url <url>', `exporter to ask (default ${DEFAULT_EXPORTER_URL})`)
      .option('--token-file <path>', 'bearer token, needed from another host (default $JOULEFLOW_JOBS_TOKEN)')
      .option('--json', 'print JSON instead of a table');
  common(jobs.command('ls').description('list live jobs (with --all also finished ones from the ledger)'))
    .option('--all', 'include finished jobs from the ledger')
    .action(async (opts: JobsOptions) => {
      const base = exporterBase(opts);
      const token = apiToken(opts.tokenFile);
      // The API answers in pages (bounded responses): follow them to the end.
      const jobs: JobReport[] = [];
      let cursor: string | undefined;
      do {
        const query = `?limit=1000${opts.all ? '&all=1' : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page = (await get(base, `/api/v1/jobs${query}`, token)) as { jobs: JobReport[]; next_cursor?: string };
        jobs.push(...page.jobs);
        cursor = page.next_cursor;
      } while (cursor);
      process.stdout.write((opts.json ? JSON.stringify(jobs, null, 2) : jobsTable(jobs)) + '\n');
    });
  common(jobs.command('show').description("show one job's energy report").argument('<id>', 'job id')).action(
    async (id: string, opts: JobsOptions) => {
      const base = exporterBase(opts);
      const r = (await get(base, `/api/v1/jobs/${encodeURIComponent(id)}`, apiToken(opts.tokenFile))) as JobReport & {
        work?: UnitReport[];
      };
      process.stdout.write((opts.json ? JSON.stringify(r, null, 2) : showReport(r)) + '\n');
    },
  );
}
