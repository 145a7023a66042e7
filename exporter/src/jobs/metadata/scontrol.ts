import { execFile } from 'child_process';
import { accessSync, constants } from 'fs';
import * as path from 'path';
import type { JobMetadata, MetadataResolver } from './types';

/**
 * Slurm job metadata from `scontrol show job -o <id>` (one line of Key=Value pairs). Runs on
 * demand, once per job (the caller caches), with a timeout: slurmctld may be slow or down, and a
 * hung scontrol must not pile up. Off when no `scontrol` is on PATH.
 */

const TIMEOUT_MS = 5000;

/** Parses `scontrol show job -o` output: Key=Value tokens; values may contain spaces only in the last fields we skip. */
export function parseScontrolJob(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const line = text.split('\n').find((l) => l.startsWith('JobId=')) ?? '';
  // Keys are CamelCase words (with ':' or '/' in a few, e.g. TRES per node); a value runs to the next " Key=".
  const re = /(?:^|\s)([A-Za-z][A-Za-z0-9:/_]*)=/g;
  const keys: Array<{ key: string; at: number; valueAt: number }> = [];
  for (let m = re.exec(line); m; m = re.exec(line)) keys.push({ key: m[1], at: m.index, valueAt: m.index + m[0].length });
  keys.forEach((k, i) => {
    const end = i + 1 < keys.length ? keys[i + 1].at : line.length;
    if (!(k.key in out)) out[k.key] = line.slice(k.valueAt, end).trim();
  });
  return out;
}

/** `UserId=alice(1000)` → alice. */
function nameOf(v: string | undefined): string | undefined {
  const n = v?.replace(/\(\d+\)$/, '').trim();
  return n && n !== '(null)' ? n : undefined;
}

export function slurmMetadata(fields: Record<string, string>): JobMetadata {
  const labels: Record<string, string> = {};
  for (const [key, label] of [
    ['Partition', 'partition'],
    ['Account', 'account'],
    ['ArrayJobId', 'array_job_id'],
    ['ArrayTaskId', 'array_task_id'],
  ] as const) {
    const v = fields[key];
    if (v && v !== '(null)') labels[label] = v;
  }
  const user = nameOf(fields.UserId);
  return { name: fields.JobName || undefined, user, labels };
}

export function findOnPath(cmd: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export class ScontrolResolver implements MetadataResolver {
  readonly scheduler = 'slurm';

  constructor(
    private readonly scontrol: string,
    private readonly timeoutMs = TIMEOUT_MS,
  ) {}

  resolve(id: string): Promise<JobMetadata | undefined> {
    // Only plain Slurm job ids: the id comes from a process environment or a cgroup path.
    if (!/^\d+$/.test(id)) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      execFile(
        this.scontrol,
        ['show', 'job', '-o', id],
        { timeout: this.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20, env: { ...process.env, SLURM_TIME_FORMAT: 'standard' } },
        (err, stdout, stderr) => {
          if (err) {
            // "Invalid job id specified": the job is already gone from slurmctld; nothing to learn.
            if (/invalid job id/i.test(stderr)) resolve(undefined);
            else reject(new Error(`scontrol show job ${id}: ${(stderr || err.message).trim().split('\n')[0]}`));
            return;
          }
          const fields = parseScontrolJob(stdout);
          resolve(fields.JobId === id ? slurmMetadata(fields) : undefined);
        },
      );
    });
  }
}
