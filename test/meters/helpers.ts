import { spawn, spawnSync, type ChildProcess } from 'child_process';
import { createSocket } from 'dgram';
import { mkdtempSync } from 'fs';
import { createServer } from 'net';
import { tmpdir } from 'os';
import { join } from 'path';
import type { Exporter } from '../../exporter/src/exporter';
import type { Source } from '../../exporter/src/sources/types';
import type { Logger } from '../../exporter/src/util/log';

/** Shared helpers of the meter suites: real peers on loopback, free ports, exported values. */

/** Fails (never skips) with the apt package to install when a peer binary is missing. */
export function requireBinary(path: string, aptPackage: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${path}`], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.trim()) {
    throw new Error(
      `${path} is missing: install the Debian package "${aptPackage}" (apt-get install -y --no-install-recommends ${aptPackage})`,
    );
  }
  return r.stdout.trim();
}

export function requirePythonModule(module: string, aptPackage: string): void {
  const r = spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(
      `python module ${module} is missing for /usr/bin/python3: install the Debian package "${aptPackage}" (${r.stderr.trim().split('\n').pop()})`,
    );
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `jouleflow-${prefix}-`));
}

export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Real-time read timeouts far above what a peer's answer takes, for tests that step an injected
 * clock (StepClock) and compare every served value with what was used: on a loaded machine a peer
 * process (snmpd's pass script, pymodbus, ipmitool) or the first request of a lazily loaded client
 * can take most of a second, and a read that times out after the peer served it (or a meter reported
 * down on a slow answer) would make the comparison fail. Meters default to 70 % of the interval
 * (3.5 s here); the test clock still steps its own interval per tick.
 */
export const PATIENT = { interval: '5s', timeout: '5s' };

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts a peer process; its output goes to the returned buffer for error messages. */
export function startPeer(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { proc: ChildProcess; output: () => string } {
  let out = '';
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, output: () => out };
}

export async function stopPeer(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

/** The exported jouleflow_node_energy_joules_total of one series (0 when absent). */
export async function exportedJoules(exp: Exporter, labels: { component?: string; device?: string; source?: string }): Promise<number> {
  const m = await exp.metrics.nodeEnergy.get();
  return m.values
    .filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want))
    .reduce((a, v) => a + v.value, 0);
}

export function sourceUp(exp: Exporter, name: string): boolean | undefined {
  return exp.sampler.statuses.find((s) => s.name === name)?.up;
}

export function sourceError(exp: Exporter, name: string): string | undefined {
  return exp.sampler.statuses.find((s) => s.name === name)?.lastError;
}

/** An injected clock that the test advances by a fixed step per tick. */
export class StepClock {
  now = 1_000_000;
  constructor(readonly stepMs: number) {}
  readonly fn = () => this.now;
  advance(): void {
    this.now += this.stepMs;
  }
}

/** The node's IT power: a constant, so node IT energy per interval is known exactly to the test. */
export class FixedIt implements Source {
  readonly name = 'fixed-it';
  constructor(private readonly watts: number) {}
  async init() {
    return true;
  }
  async sample() {
    return {
      readings: [
        {
          kind: 'mean_power' as const,
          component: 'compute' as const,
          domain: 'cpu' as const,
          device: 'cpu',
          source: 'test',
          watts: this.watts,
        },
      ],
    };
  }
}

/** A logger that keeps each warning as "message {fields as JSON}" and drops the rest. */
export function warningLogger(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (msg, fields) => warnings.push(`${msg} ${JSON.stringify(fields)}`),
    error: () => undefined,
    child: () => log,
  };
  return { log, warnings };
}
