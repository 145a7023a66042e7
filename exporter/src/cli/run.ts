import { spawn, type ChildProcess } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import type { Command } from 'commander';
import type { Config } from '../config';
import { createExporter } from '../exporter';
import { createRegistry } from '../jobs';
import type { JobReport } from '../jobs/report';
import { formatReport } from '../jobs/report';
import { createLogger, type LogFormat, type LogLevel } from '../util/log';
import { addServeFlags, resolveConfig } from './serve';
import { readJobsToken } from '../web/token';
import { addWorkFlags, exporterWorkSink, formatWorkReport, WORK_FILE_ENV, WorkFile, workPricingFlags } from './work-file';
import { workReport, type WorkPricing } from '../jobs/work';

/**
 * `jouleflow run [--name N] [--label k=v]... [--json] [--exporter.url URL] -- CMD ARGS…`
 *
 * Runs CMD as a job: registered with the exporter at --exporter.url when one answers, otherwise
 * measured in-process with the same sources and model. stdin/stdout/stderr are inherited,
 * signals are forwarded, the exit status is passed through; at the end the job's energy report
 * is printed to stderr (like time(1)) or, with --json, as JSON to stdout.
 */

export const DEFAULT_EXPORTER_URL = 'http://127.0.0.1:10042';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export interface RunOptions {
  name?: string;
  label?: string[];
  json?: boolean;
  'exporter.url'?: string;
  tokenFile?: string;
  pricePerKwh?: string;
  currency?: string;
  [flag: string]: unknown;
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function addRunCommand(program: Command): void {
  program.enablePositionalOptions();
  const cmd = program
    .command('run')
    .description('run a command as a job and print its energy report when it ends')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--name <name>', 'job name (default: the command)')
    .option('--label <k=v>', 'job label, repeatable', collect)
    .option('--json', 'print the report as JSON to stdout instead of text to stderr')
    .option('--exporter.url <url>', `exporter to register with (default ${DEFAULT_EXPORTER_URL})`)
    .option('--token-file <path>', 'bearer token for the exporter API (default $JOULEFLOW_JOBS_TOKEN)');
  addWorkFlags(cmd);
  addServeFlags(cmd);
  cmd.passThroughOptions().action(async (argv: string[], opts: RunOptions) => {
    const code = await runCommand(argv, opts);
    process.exit(code);
  });
}

export function parseLabels(pairs: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new Error(`--label ${p}: expected key=value`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/** The CLI's token for the exporter API: --token-file, else $JOULEFLOW_JOBS_TOKEN (web/token.ts). */
export function apiToken(tokenFile?: string): string | undefined {
  return readJobsToken(tokenFile, '--token-file');
}

async function api(
  url: string,
  method: string,
  body: unknown,
  token: string | undefined,
  timeoutMs: number,
  abort?: AbortSignal,
): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: abort ? AbortSignal.any([abort, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = { error: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

/** Whether a jouleflow exporter answers at `base`. */
async function exporterAnswers(base: string, token: string | undefined): Promise<boolean> {
  try {
    // On this host the exporter knows the caller by uid; from another host, listing jobs takes the token.
    const r = await api(`${base}/api/v1/jobs`, 'GET', undefined, token, 1000);
    return r.status === 200 && typeof r.json === 'object' && r.json !== null && 'jobs' in r.json;
  } catch {
    return false;
  }
}

interface Child {
  proc: ChildProcess;
  spawnedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Stops forwarding signals (they are forwarded from the spawn on, registration included). */
  stopForwarding: () => void;
  /** Gated children: lets the command start (until then a shell holds its PID, waiting). */
  release: () => void;
  /**
   * Gated children: the first forwarded signal that arrived before release(). It is not passed to
   * the waiting shell (that would kill it silently and the command would never run); the caller
   * decides: here, the command is then not started.
   */
  signalledWhileGated: Promise<NodeJS.Signals>;
}

/**
 * A gated start holds the command's PID in a shell that waits on a pipe and then execs the command
 * (same PID, same start time): the exporter can register the PID before the command runs, so even
 * a command that exits at once is measured instead of refused as "no such process".
 */
const GATE = 'read -r _ <&3; exec "$@" 3<&-';
const GATE_MAX_MS = 1000;

function startChild(argv: string[], gated = false): Promise<Child> {
  return new Promise((resolve, reject) => {
    const spawnedAt = Date.now();
    const proc = gated
      ? spawn('/bin/sh', ['-c', GATE, 'jouleflow-run', ...argv], { stdio: ['inherit', 'inherit', 'inherit', 'pipe'] })
      : spawn(argv[0], argv.slice(1), { stdio: 'inherit' });
    const gate = gated ? (proc.stdio[3] as NodeJS.WritableStream | null) : null;
    let released = false;
    let onGatedSignal: (sig: NodeJS.Signals) => void = () => undefined;
    const signalledWhileGated = new Promise<NodeJS.Signals>((r) => (onGatedSignal = r));
    const release = () => {
      if (!gate || released) return;
      released = true;
      gate.on('error', () => undefined); // the shell may already be gone (killed by a signal)
      gate.end('\n');
    };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      proc.once('exit', (code, signal) => res({ code, signal })),
    );
    proc.once('error', reject);
    // From here on a signal to the wrapper goes to the command: during the job registration too,
    // when it would otherwise kill the wrapper and leave the command running unwatched.
    const intercept = (sig: NodeJS.Signals): boolean => {
      if (!gate || released) return false;
      onGatedSignal(sig);
      return true;
    };
    proc.once('spawn', () =>
      resolve({ proc, spawnedAt, exited, stopForwarding: forwardSignals(proc, intercept), release, signalledWhileGated }),
    );
  });
}

/** Forwards the wrapper's signals to the child, except those `intercept` takes (returns true). */
function forwardSignals(child: ChildProcess, intercept: (sig: NodeJS.Signals) => boolean): () => void {
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      if (intercept(sig)) return;
      try {
        child.kill(sig);
      } catch {
        // the child has already gone
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => handlers.forEach(([sig, h]) => process.off(sig, h));
}

/** The work the command reported through JOULEFLOW_WORK_FILE, and how to price it. */
interface RunWork {
  file: WorkFile;
  pricing: Omit<WorkPricing, 'gramsPerKwh'>;
}

function emit(report: JobReport, json: boolean, work: RunWork, totals: Record<string, number>): void {
  const units = workReport(report, totals, { ...work.pricing, gramsPerKwh: report.co2?.gramsPerKwh });
  if (json) process.stdout.write(JSON.stringify({ ...report, work: units }, null, 2) + '\n');
  else process.stderr.write(formatReport(report) + (units.length ? '\n' + formatWorkReport(units) : '') + '\n');
}

/** The wrapped command finds its work file in the environment it inherits. */
function openWorkFile(opts: RunOptions): RunWork {
  const pricing = workPricingFlags(opts);
  const file = new WorkFile((msg) => process.stderr.write(`jouleflow: ${msg}\n`));
  process.env[WORK_FILE_ENV] = file.path;
  return { file, pricing };
}

function exitCodeOf(r: { code: number | null; signal: NodeJS.Signals | null }): number {
  if (r.code !== null) return r.code;
  const n = r.signal ? os.constants.signals[r.signal] : undefined;
  return 128 + (n ?? 1);
}

/** Runs the command; resolves with the exit status to pass on. */
export async function runCommand(argv: string[], opts: RunOptions): Promise<number> {
  if (argv.length === 0) throw new Error('run: no command given (jouleflow run [options] -- CMD ARGS…)');
  const name = opts.name ?? path.basename(argv[0]);
  const labels = parseLabels(opts.label);
  const base = (opts['exporter.url'] ?? process.env.JOULEFLOW_EXPORTER_URL ?? DEFAULT_EXPORTER_URL).replace(/\/+$/, '');
  const json = !!opts.json;
  const token = apiToken(opts.tokenFile);
  const work = openWorkFile(opts);
  try {
    if (await exporterAnswers(base, token)) return await runWithExporter(argv, name, labels, base, token, json, work);
    if (opts['exporter.url'] !== undefined) process.stderr.write(`jouleflow: no exporter answers at ${base}; measuring in-process\n`);
    return await runInProcess(argv, name, labels, opts, json, work);
  } finally {
    await work.file.finish(); // removes the file even when the command could not start
  }
}

async function spawnOr127(argv: string[], gated = false): Promise<Child | number> {
  try {
    return await startChild(argv, gated);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`jouleflow: cannot run ${argv[0]}: ${e.code === 'ENOENT' ? 'command not found' : e.message}\n`);
    return e.code === 'ENOENT' ? 127 : 126;
  }
}

async function finishChild(child: Child): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const r = await child.exited;
  child.stopForwarding();
  return r;
}

/** Passes a death by signal on: the wrapper dies of the same signal (after the report). */
function passOn(r: { code: number | null; signal: NodeJS.Signals | null }): number {
  if (r.signal && r.signal !== 'SIGKILL' && r.signal !== 'SIGSTOP') {
    process.kill(process.pid, r.signal);
  }
  return exitCodeOf(r);
}

/** POSTs the job; resolves with its id, or with why it was not registered (never rejects). */
async function register(
  base: string,
  token: string | undefined,
  abort: AbortSignal,
  body: Record<string, unknown>,
): Promise<{ id?: string; error?: string }> {
  try {
    const r = await api(`${base}/api/v1/jobs`, 'POST', body, token, 5000, abort);
    if (r.status === 201) return { id: (r.json as JobReport).id };
    return { error: `the exporter refused the job (${r.status}): ${(r.json as { error?: string }).error ?? ''}` };
  } catch (err) {
    return { error: `registering the job failed: ${(err as Error).message}` };
  }
}

async function runWithExporter(
  argv: string[],
  name: string,
  labels: Record<string, string>,
  base: string,
  token: string | undefined,
  json: boolean,
  work: RunWork,
): Promise<number> {
  const child = await spawnOr127(argv, true);
  if (typeof child === 'number') return child;
  // A slow exporter must not hold the command back for long: it starts after at most a second,
  // registered or not (only a command that also ends at once could then be missed).
  let started = false;
  const start = () => {
    started = true;
    child.release();
  };
  const gateTimer = setTimeout(start, GATE_MAX_MS);
  const abort = new AbortController();
  const registration = register(base, token, abort.signal, {
    name,
    pids: [child.proc.pid],
    labels: { scheduler: 'jouleflow-run', ...labels },
    start: child.spawnedAt / 1000,
  });
  const outcome = await Promise.race([
    registration,
    child.signalledWhileGated.then((sig) => ({ signal: sig })),
    child.exited.then(() => ({ exited: true as const })),
  ]);
  clearTimeout(gateTimer);
  if ('signal' in outcome) {
    // Signalled while the command was still held: it is not started (a command killed before it
    // ran has nothing to report); the shell holding its PID goes, and so does the job, if any.
    abort.abort();
    child.proc.kill('SIGKILL');
    await finishChild(child);
    const n = os.constants.signals[outcome.signal];
    process.stderr.write(`jouleflow: ${outcome.signal} while registering the job; the command was not started\n`);
    return 128 + n;
  }
  if ('exited' in outcome) {
    abort.abort();
    process.stderr.write('jouleflow: the command ended before the exporter registered it; no energy report\n');
    return passOn(await finishChild(child));
  }
  const id = outcome.id;
  if (outcome.error !== undefined) {
    process.stderr.write(`jouleflow: ${outcome.error}; the command ${started ? 'is running' : 'runs'} unmeasured\n`);
  }
  const warn = (msg: string) => process.stderr.write(`jouleflow: ${msg}\n`);
  work.file.start(id === undefined ? undefined : exporterWorkSink(base, id, token, warn));
  start();
  const result = await finishChild(child);
  const totals = await work.file.finish(); // the final totals reach the exporter before the job ends
  if (id !== undefined) {
    try {
      const r = await api(`${base}/api/v1/jobs/${encodeURIComponent(id)}/end`, 'POST', {}, token, 30_000);
      if (r.status === 200) emit(r.json as JobReport, json, work, totals);
      else process.stderr.write(`jouleflow: ending job ${id} failed (${r.status}): ${(r.json as { error?: string }).error ?? ''}\n`);
    } catch (err) {
      process.stderr.write(`jouleflow: ending job ${id} failed: ${(err as Error).message}\n`);
    }
  }
  return passOn(result);
}

async function runInProcess(
  argv: string[],
  name: string,
  labels: Record<string, string>,
  opts: RunOptions,
  json: boolean,
  work: RunWork,
): Promise<number> {
  // No ledger unless asked for (--jobs.ledger / config file), and no discovery: the tracker holds
  // just this job.
  const explicitLedger = opts['jobs.ledger'] !== undefined || opts['config.file'] !== undefined;
  const cfg: Config = await resolveConfig(opts);
  cfg.jobs.discovery = { slurm: false, kubernetes: false, env: false };
  const log = createLogger((opts['log.level'] as LogLevel | undefined) ?? 'error', cfg.log.format as LogFormat);
  const { registry } = createRegistry(cfg, log, { ledger: explicitLedger, resume: false });
  const exp = await createExporter(cfg, { log, jobs: registry });
  await exp.sampler.tick(); // baseline of every source
  const child = await spawnOr127(argv);
  if (typeof child === 'number') {
    await exp.close();
    registry.close();
    return child;
  }
  const job = registry.register({
    name,
    labels,
    pids: [child.proc.pid ?? 0],
    source: 'run',
    reaperPid: process.pid,
    start: child.spawnedAt,
  });
  exp.sampler.start();
  work.file.start();
  const result = await finishChild(child);
  const totals = await work.file.finish();
  const ended = registry.end(job.id, { timeoutMs: 5 * cfg.sample.interval + 5000 });
  let report: JobReport | undefined;
  void ended.then((r) => (report = r));
  while (report === undefined) {
    await exp.sampler.tick();
    await new Promise((r) => setImmediate(r));
  }
  await exp.close();
  registry.close();
  emit(report, json, work, totals);
  return passOn(result);
}
