import { closeSync, openSync, readdirSync } from 'fs';
import { Registry } from 'prom-client';
import { registerProcessMetrics } from './process-metrics';

async function openFdsMetric(registry: Registry): Promise<number> {
  const m = /^process_open_fds (\d+)$/m.exec(await registry.metrics());
  if (!m) throw new Error('no process_open_fds');
  return Number(m[1]);
}

test('process_open_fds counts this process’s descriptors, and follows them as they open and close', async () => {
  const registry = new Registry();
  registerProcessMetrics(registry);
  // Counted independently: the listing holds its own descriptor besides the open ones.
  const listed = () => readdirSync('/proc/self/fd').length - 1;
  const before = await openFdsMetric(registry);
  expect(before).toBe(listed());
  const fds = Array.from({ length: 25 }, () => openSync('/proc/self/stat', 'r'));
  try {
    expect(await openFdsMetric(registry)).toBe(before + 25);
    expect(await openFdsMetric(registry)).toBe(listed());
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  expect(await openFdsMetric(registry)).toBe(before);
});
