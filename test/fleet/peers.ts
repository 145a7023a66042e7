import { type ChildProcess, spawn } from 'child_process';
import { waitFor } from '../helpers/exporter-process';

/** Long-running peers (Prometheus, VictoriaMetrics, vmagent, vmalert, the demo) and their HTTP APIs. */

export interface Peer {
  name: string;
  child: ChildProcess;
  logs: () => string;
}

export function startPeer(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Peer {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.once('exit', (code, sig) => (out += `\n[${name} exited: ${code ?? sig}]`));
  return { name, child, logs: () => out };
}

/** SIGTERM, then SIGKILL after 10 s: every peer a suite starts ends with it. */
export async function stopPeer(p: Peer | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
  clearTimeout(timer);
  if (p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGKILL');
    await exited;
  }
}

/** Waits until GET url answers 2xx, failing with the peer's log if it exits or the bound passes. */
export async function waitReady(p: Peer, url: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      if (p.child.exitCode !== null) throw new Error('exited');
      return (await fetch(url)).ok ? true : undefined;
    },
    `${p.name} at ${url}`,
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${p.name} log:\n${p.logs().slice(-3000)}`);
  });
}

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query through the Prometheus HTTP API (Prometheus and VictoriaMetrics alike). */
export async function instant(base: string, expr: string, time: number): Promise<Sample[]> {
  const res = await fetch(`${base}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr, time: time.toFixed(3) }) });
  const body = (await res.json()) as { status: string; data?: { resultType: string; result: unknown }; error?: string };
  if (body.status !== 'success' || !body.data) throw new Error(`${base}: ${expr}: ${body.error ?? res.status}`);
  if (body.data.resultType === 'scalar') return [{ metric: {}, value: body.data.result as [number, string] }];
  return body.data.result as Sample[];
}

/** A result as "labels without __name__" → value, for comparing two stores. */
export function byLabels(samples: Sample[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    const labels = Object.entries(s.metric)
      .filter(([k]) => k !== '__name__')
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}="${v}"`)
      .join(',');
    out.set(`{${labels}}`, Number(s.value[1]));
  }
  return out;
}
