import { execFile } from 'child_process';
import * as path from 'path';
import { parseExposition, startServe, type RunningExporter } from '../helpers/exporter-process';
import { ROOT } from './cluster';

/** What the Slurm suite reads from a running exporter: job info, energy, the Σ invariant, the CLI. */

export const COMPONENTS = ['compute', 'transmit', 'store', 'cooling'] as const;

export async function scrape(exp: RunningExporter): Promise<string> {
  const r = await fetch(`${exp.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return r.text();
}

/** jouleflow_job_info label sets by job_id. */
export function jobInfos(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('jouleflow_job_info{')) continue;
    const labels: Record<string, string> = {};
    for (const m of line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    out.set(labels.job_id, labels);
  }
  return out;
}

/** Σ of a metric's samples whose label text matches. */
export function total(text: string, name: string, match: (labels: string) => boolean = () => true): number {
  let sum = 0;
  for (const [key, v] of parseExposition(text)) {
    if (!key.startsWith(`${name}{`)) continue;
    if (match(key.slice(name.length))) sum += v;
  }
  return sum;
}

export function jobEnergy(text: string, id: string): number {
  return total(text, 'jouleflow_job_energy_joules_total', (l) => l.includes(`job_id="${id}"`));
}

/** Per component: [Σ over every job series including unattributed, node]. */
export function balance(text: string): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const c of COMPONENTS) {
    const has = (l: string) => l.includes(`component="${c}"`);
    out[c] = [total(text, 'jouleflow_job_energy_joules_total', has), total(text, 'jouleflow_node_energy_joules_total', has)];
  }
  return out;
}

export function startExporter(ledger: string, env: NodeJS.ProcessEnv): Promise<RunningExporter> {
  return startServe(['--sample.interval=250ms', '--jobs.checkpoint-interval=250ms', `--jobs.ledger=${ledger}`], env, 30_000);
}

/** `jouleflow jobs show <id> --json` against the exporter (the built command, as installed). */
export function jobsShow(exp: RunningExporter, id: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'exporter/bin/jouleflow.js'), 'jobs', 'show', id, '--json', `--exporter.url=${exp.url}`],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`jouleflow jobs show ${id}: ${stderr || err.message}`));
        else resolve(JSON.parse(stdout) as Record<string, unknown>);
      },
    );
  });
}
