import { appendFileSync } from 'fs';
import { performance } from 'perf_hooks';
import { WorkFile } from '../cli/work-file';
import { WorkHistory, WorkLineReader, WorkTally } from '../jobs/work';
import type { BenchRow } from './table';

/**
 * Energy per unit of work: what a trainer's reporting costs the wrapper (parsing and tallying
 * JOULEFLOW_WORK_FILE lines, tailing the file) and what a per-tick history costs a job.
 */
export async function benchWork(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const row = (metric: string, value: number, unit: string, note: string) => rows.push({ area: 'work', metric, value, unit, note });
  const LINES = 500_000;
  const text = Array.from({ length: LINES }, (_, i) => (i % 2 ? 'steps +1\n' : `tokens ${i * 16384}\n`)).join('');

  // 1. parse + tally, in 64 KiB chunks as the tail reads them
  const reader = new WorkLineReader();
  const tally = new WorkTally();
  let t0 = performance.now();
  for (let o = 0; o < text.length; o += 65536) for (const u of reader.push(text.slice(o, o + 65536)).updates) tally.apply(u);
  const parseMs = performance.now() - t0;
  row('work-file line parsed + tallied', (parseMs * 1e6) / LINES, 'ns', `${LINES} lines`);

  // 2. the tail: a file the command has written, read to the end (bounded reads of 1 MiB per poll)
  const wf = new WorkFile(() => undefined);
  appendFileSync(wf.path, text);
  t0 = performance.now();
  await wf.finish();
  const tailMs = performance.now() - t0;
  row('work-file tail throughput', text.length / 2 ** 20 / (tailMs / 1000), 'MiB/s', `${(text.length / 2 ** 20).toFixed(1)} MiB`);

  // 3. one job's history, one sample per tick (1 s ticks, 1 h kept)
  const h = new WorkHistory(3600_000);
  const N = 100_000;
  t0 = performance.now();
  for (let i = 0; i < N; i++)
    h.record({ t: i * 1000, energy: { compute: i * 700, transmit: i, store: i, cooling: i * 390 }, work: { tokens: i * 16384 } });
  const recMs = performance.now() - t0;
  row('history record per tick (1 job)', (recMs * 1000) / N, 'µs', `${h.length} samples kept`);
  t0 = performance.now();
  for (let i = 0; i < 1000; i++) h.window('tokens', 300_000);
  row('J/unit over 5 m from the history', performance.now() - t0, 'µs', 'per query, 1 h at 1 s');
  return rows;
}
