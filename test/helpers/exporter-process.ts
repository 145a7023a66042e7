import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { existsSync } from 'fs';
import { join } from 'path';

export const ROOT = join(__dirname, '..', '..');
export const MAIN = join(ROOT, 'exporter', 'dist', 'main.js');

/** Builds the exporter once if dist/ is missing (the root test runner builds before jest). */
export function ensureBuilt(): void {
  if (existsSync(MAIN)) return;
  const r = spawnSync('npx', ['tsc', '-p', join(ROOT, 'exporter')], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) throw new Error('building the exporter failed');
}

export interface RunningExporter {
  child: ChildProcess;
  url: string;
  logs: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `jouleflow serve` with the given flags on a free loopback port and waits until it serves.
 * `command`: an installed `jouleflow` executable instead of this checkout's build.
 */
export async function startServe(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
  command?: string,
): Promise<RunningExporter> {
  if (!command) ensureBuilt();
  // Tests never share the default ledger (/var/lib/jouleflow): one without a ledger flag gets none.
  const ledger = args.some((a) => a.startsWith('--jobs.ledger')) ? [] : ['--jobs.ledger='];
  const argv = ['serve', '--web.listen-address=127.0.0.1:0', ...ledger, ...args];
  const child = spawn(command ?? process.execPath, command ? argv : [MAIN, ...argv], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`exporter did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      const m = /url=(https?:\/\/[^\s/]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exporter exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    child,
    url,
    logs: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Parses a Prometheus text exposition into "name{labels}" → value. */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** Sums the samples of a metric whose labels include every given pair. */
export function sumSeries(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, v] of samples) {
    if (!(key === name || key.startsWith(name + '{'))) continue;
    if (Object.entries(labels).every(([k, x]) => key.includes(`${k}="${x}"`))) sum += v;
  }
  return sum;
}

export async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
