import { parentPort, workerData } from 'worker_threads';
import type { LogFields, Logger, LogLevel } from '../util/log';
import { NvmlReader, type NvmlDeviceInfo } from './nvml-reader';
import type { SampleResult } from './types';
import { SourceError } from './types';

/**
 * The NVML worker thread: owns the koffi NVML handle and makes every library call synchronously
 * here, so a hung driver blocks this thread only, never the event loop nor libuv's shared pool
 * that `fs` reads and gzip need (issue 10 §1). One request at a time, from NvmlSource (nvml.ts).
 */

export interface NvmlWorkerData {
  library: string;
}

export type NvmlRequest = { id: number; op: 'init' | 'sample' | 'close' };

export type NvmlAnswer =
  | { id: number; ok: true; present?: boolean; result?: SampleResult; devices: NvmlDeviceInfo[] }
  | { id: number; ok: false; reason: string; message: string };

/** Posted (at most every PROGRESS_MS) while NVML calls keep returning: the request is slow, not stuck. */
export interface NvmlProgress {
  progress: true;
}
const PROGRESS_MS = 100;

export interface NvmlLogLine {
  log: { level: LogLevel; msg: string; fields: LogFields };
}

/** A Logger whose lines are posted to the main thread, which writes them with its own logger. */
function forwardingLogger(post: (line: NvmlLogLine) => void, base: LogFields = {}): Logger {
  const emit = (level: LogLevel) => (msg: string, fields?: LogFields) => post({ log: { level, msg, fields: { ...base, ...fields } } });
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (f) => forwardingLogger(post, { ...base, ...f }),
  };
}

function serve(): void {
  const port = parentPort;
  if (!port) return;
  const { library } = workerData as NvmlWorkerData;
  let lastProgress = 0;
  const progress = () => {
    const now = performance.now();
    if (now - lastProgress < PROGRESS_MS) return;
    lastProgress = now;
    port.postMessage({ progress: true } satisfies NvmlProgress);
  };
  const reader = new NvmlReader(
    library,
    forwardingLogger((l) => port.postMessage(l)),
    progress,
  );
  const answer = (a: NvmlAnswer) => port.postMessage(a);
  port.on('message', (req: NvmlRequest) => {
    const run = async (): Promise<NvmlAnswer> => {
      switch (req.op) {
        case 'init':
          return { id: req.id, ok: true, present: await reader.init(), devices: [...reader.devices] };
        case 'sample': {
          const result = await reader.sample();
          return { id: req.id, ok: true, result, devices: [...reader.devices] };
        }
        case 'close':
          await reader.close();
          return { id: req.id, ok: true, devices: [] };
      }
    };
    run().then(answer, (err: Error) =>
      answer({ id: req.id, ok: false, reason: err instanceof SourceError ? err.reason : 'read', message: err.message }),
    );
  });
}

serve();
