import { join } from 'path';
import { FIXTURES } from '../helpers/fixture';
import { ensureFakeNvml } from '../nvml/fake-nvml';
import { parseExposition, startServe, sumSeries, type RunningExporter } from '../helpers/exporter-process';

/**
 * Issue 10 §1: a GPU library whose every call hangs (here 60 s) must not keep the exporter from
 * serving, nor the other sources from sampling: the server listens at once, NVML is reported down
 * with reason init_timeout, and the host sources are measured meanwhile.
 */

let s: RunningExporter | undefined;
afterEach(async () => {
  await s?.stop('SIGKILL');
  s = undefined;
});

test('a hung NVML init: /metrics answers, nvml is down with init_timeout, the other sources sample', async () => {
  const library = ensureFakeNvml();
  const host = join(FIXTURES, 'host');
  s = await startServe([`--nvml.library=${library}`, `--path.sysfs=${join(host, 'sys')}`, `--path.procfs=${join(host, 'proc')}`], {
    JOULEFLOW_FAKE_NVML_HANG_MS: '60000',
    JOULEFLOW_FAKE_NVML_GPUS: '2',
  });
  // Wait (bounded) for the NVML init timeout and a tick of the other sources.
  let samples = new Map<string, number>();
  for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
    samples = parseExposition(await fetch(`${s.url}/metrics`).then((r) => r.text()));
    if (sumSeries(samples, 'jouleflow_source_errors_total', { reader: 'nvml', reason: 'init_timeout' }) >= 1) break;
  }
  expect(sumSeries(samples, 'jouleflow_source_errors_total', { reader: 'nvml', reason: 'init_timeout' })).toBe(1);
  expect(samples.get('jouleflow_source_up{reader="nvml",device=""}')).toBe(0);
  expect(samples.get('jouleflow_source_up{reader="diskstats",device=""}')).toBe(1);
  expect(sumSeries(samples, 'jouleflow_node_energy_joules_total', { source: 'diskstats' })).toBeGreaterThan(0);
}, 60_000);
