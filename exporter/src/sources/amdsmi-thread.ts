import { existsSync } from 'fs';
import { join } from 'path';
import { Worker } from 'worker_threads';
import type { AmdReply, AmdRequest } from './amdsmi-worker';

/**
 * The main thread's end of the AMD SMI worker (amdsmi-worker.ts): one Worker owns the library,
 * requests are answered in order, each as a promise. A worker that dies rejects everything
 * pending and every later request; close() is bounded even when a driver call hangs.
 */

/** The worker's code when running from TypeScript sources (ts-jest): bundled once per process. */
let bundled: string | undefined;

/**
 * The built exporter runs amdsmi-worker.js. Under ts-jest the sources are TypeScript: the worker
 * and its imports are then bundled with esbuild (a dev dependency) into one script, once.
 */
function startWorker(): Worker {
  const js = join(__dirname, 'amdsmi-worker.js');
  if (existsSync(js)) return new Worker(js);
  if (bundled === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- dev-only path, never taken by the built exporter
    const esbuild = require('esbuild') as { buildSync(o: object): { outputFiles: Array<{ text: string }> } };
    const out = esbuild.buildSync({
      entryPoints: [join(__dirname, 'amdsmi-worker.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      external: ['koffi'],
      write: false,
    });
    bundled = out.outputFiles[0].text;
  }
  return new Worker(bundled, { eval: true });
}

export class AmdSmiThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: AmdReply) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  constructor() {
    this.worker = startWorker();
    this.worker.on('message', (m: { id: number; reply: AmdReply }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      p?.resolve(m.reply);
    });
    const fail = (err: Error) => {
      this.dead ??= err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`AMD SMI worker exited (code ${code})`)));
  }

  /** Requests not yet answered (a hung driver keeps them here). */
  get inFlight(): number {
    return this.pending.size;
  }

  request(req: AmdRequest): Promise<AmdReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, req });
    });
  }

  /**
   * Stops the worker. When a call still hangs after `graceMs` the thread is left to finish on its
   * own (unref'd, so it never holds the process open): a native call cannot be interrupted.
   */
  async close(graceMs: number): Promise<void> {
    this.worker.unref();
    const stopped = this.worker.terminate().then(() => true);
    const timer = new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref());
    await Promise.race([stopped, timer]);
  }
}
