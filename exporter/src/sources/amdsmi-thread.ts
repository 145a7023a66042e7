import { existsSync } from 'fs';
import { join } from 'path';
import { Worker } from 'worker_threads';
import type { AmdReply, AmdRequest } from './amdsmi-worker';

/**
 * The main thread's end of the AMD SMI worker (amdsmi-worker.ts): one Worker owns the library,
 * requests are answered in order, each as a promise. A worker that dies rejects everything
 * pending and every later request; close() is bounded even when a driver call hangs.
 */

/**
 * Under ts-jest the sources are TypeScript: the worker then compiles its modules with the
 * TypeScript compiler (a dev dependency) as it requires them. The built exporter runs the .js.
 */
const TS_BOOTSTRAP = `
const fs = require('fs');
const ts = require('typescript');
require.extensions['.ts'] = (m, file) =>
  m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);
require(require('worker_threads').workerData.file);
`;

function startWorker(): Worker {
  const js = join(__dirname, 'amdsmi-worker.js');
  if (existsSync(js)) return new Worker(js);
  return new Worker(TS_BOOTSTRAP, { eval: true, workerData: { file: join(__dirname, 'amdsmi-worker.ts') } });
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
