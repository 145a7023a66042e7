import { formatTable, type BenchRow } from './table';
import { benchCore } from './core';
import { benchNvml } from './nvml';
import { benchJobs } from './jobs';
import { benchProcess } from './process';
import { benchWork } from './work';
import { benchWeb } from './web';

/**
 * `npm run bench`: each area contributes rows; the whole table prints at the end.
 * Add an area by importing its bench function into SECTIONS.
 */
const SECTIONS: Array<{ name: string; run: () => Promise<BenchRow[]> }> = [
  { name: 'core', run: benchCore },
  { name: 'nvml', run: benchNvml },
  { name: 'jobs', run: benchJobs },
  { name: 'process', run: benchProcess },
  { name: 'work', run: benchWork },
  { name: 'web', run: benchWeb },
];

async function main(): Promise<void> {
  const only = process.argv[2];
  const rows: BenchRow[] = [];
  for (const s of SECTIONS) {
    if (only && s.name !== only) continue;
    process.stderr.write(`bench: ${s.name}…\n`);
    const t0 = Date.now();
    rows.push(...(await s.run()));
    process.stderr.write(`bench: ${s.name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  rows.push({ area: 'process', metric: 'rss', value: process.memoryUsage().rss / 2 ** 20, unit: 'MiB', note: 'after all sections' });
  process.stdout.write(formatTable(rows) + '\n');
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
