import { spawnSync } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import { homedir } from 'os';
import { join } from 'path';
import { REPO } from '../prometheus/lib';

/**
 * Shared by the container suites: podman with the configuration scripts/build-image.sh writes
 * (runc on cgroup v1 / hybrid hosts), the image built once per suite (cached layers make the
 * second build take seconds), and bounded waits.
 */

export const IMAGE = 'jouleflow-exporter:test';
export const CACHE =
  process.env.JOULEFLOW_IMAGE_CACHE ??
  (process.getuid?.() === 0 ? '/var/cache/jouleflow-images' : join(homedir(), '.cache/jouleflow-images'));
/** First run on a fresh machine: bases + image 616 s measured on 2 cores at load ~10. */
export const BUILD_TIMEOUT_MS = 20 * 60_000;

export function podmanEnv(): NodeJS.ProcessEnv {
  const conf = join(CACHE, 'containers.conf');
  return existsSync(conf) && !process.env.CONTAINERS_CONF ? { ...process.env, CONTAINERS_CONF: conf } : { ...process.env };
}

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function podman(args: string[], timeoutMs = 60_000): Result {
  const r = spawnSync('podman', args, { encoding: 'utf8', env: podmanEnv(), timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

/** podman ARGS, throwing with its output unless it exits 0; returns stdout trimmed. */
export function mustPodman(args: string[], timeoutMs = 60_000): string {
  const r = podman(args, timeoutMs);
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')} → exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Why podman cannot run containers here, or undefined when it can. Only a missing or broken
 * podman makes the suites skip; everything after this check fails loudly.
 */
export function podmanUnusable(): string | undefined {
  const r = spawnSync('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}'], { encoding: 'utf8', env: podmanEnv(), timeout: 60_000 });
  if (r.error) return `podman is not installed (${r.error.message}): apt-get install -y podman runc debootstrap podman-compose`;
  if (r.status !== 0) return `podman does not run here (podman info: exit ${r.status}: ${r.stderr.trim().split('\n').pop()})`;
  return undefined;
}

/** scripts/build-image.sh → IMAGE; returns its stage timings ("[build-image] …: N s" lines). */
export function buildImage(): string[] {
  const r = spawnSync('bash', [join(REPO, 'scripts/build-image.sh'), '--tag', IMAGE], {
    cwd: REPO,
    encoding: 'utf8',
    env: podmanEnv(),
    timeout: BUILD_TIMEOUT_MS,
    maxBuffer: 256 << 20,
  });
  const log = `${r.stdout}${r.stderr}`;
  if (r.status !== 0)
    throw new Error(`scripts/build-image.sh failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${log.slice(-6000)}`);
  return log.split('\n').filter((l) => /^\[build-image\] .*: (\d+ s|FAILED)|^\[build-image\] .*: \d+ MB$/.test(l));
}

export function removeContainers(...names: string[]): void {
  for (const n of names) podman(['rm', '-f', '-v', '-t', '0', n], 60_000); // -v: the anonymous volume of VOLUME /var/lib/jouleflow
}

export function removeVolumes(...names: string[]): void {
  for (const n of names) podman(['volume', 'rm', '-f', n], 60_000);
}

/** Polls fn every 250 ms until it returns a value, for at most timeoutMs. */
export async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export async function httpText(url: string, init?: RequestInit): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(REPO, 'exporter/package.json'), 'utf8')) as { version: string }).version;
}
