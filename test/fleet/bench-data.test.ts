import { execFileSync, spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';
import { REPO } from '../prometheus/lib';

/**
 * The synthetic fleet of `npm run bench:fleet` must look like the exporter: its label values are
 * compared with the golden end-to-end exposition (test/e2e/e2e-output.txt), which a real exporter
 * wrote, so the rules and dashboards benchmarked are the ones a real fleet would query.
 */

const GOLDEN = readFileSync(join(REPO, 'test/e2e/e2e-output.txt'), 'utf8').split('\n');

/** Labels of a sample line, without the target labels Prometheus adds (job, instance). */
function labels(line: string): Record<string, string> {
  const body = line.slice(line.indexOf('{') + 1, line.lastIndexOf('}'));
  const out: Record<string, string> = {};
  for (const m of body.matchAll(/(\w+)="([^"]*)"/g)) if (m[1] !== 'job' && m[1] !== 'instance') out[m[1]] = m[2];
  return out;
}

const of = (lines: string[], family: string) => lines.filter((l) => l.startsWith(`${family}{`)).map(labels);

function generated(): string[] {
  const script = `import { fleet } from ${JSON.stringify(join(REPO, 'scripts/bench-fleet-data.mjs'))};
    const f = fleet({ NODES: 4, GPUS: 2, JOBS: 2, HOURS: 1, STEP: 30, JOB_HOURS: 1, END: 7200 });
    process.stdout.write(JSON.stringify(f.firstStep(0)));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
}

test('the bench fleet uses the exporter label values: node series, cooling model, readers', () => {
  const lines = generated();
  const key = (l: Record<string, string>) => `${l.component}/${l.device}/${l.source}`;
  const golden = new Set(of(GOLDEN, 'jouleflow_node_energy_joules_total').map(key));
  const nodeSeries = of(lines, 'jouleflow_node_energy_joules_total').filter((l) => l.source !== 'nvml'); // the golden has no GPU
  expect(nodeSeries.length).toBeGreaterThan(0);
  for (const l of nodeSeries) expect(golden).toContain(key(l));
  expect(nodeSeries.map(key)).toContain('cooling/facility/model');

  const readers = new Set(of(GOLDEN, 'jouleflow_source_up').map((l) => l.reader));
  const up = of(lines, 'jouleflow_source_up');
  expect(up.length).toBeGreaterThan(0);
  for (const l of up) expect(readers).toContain(l.reader);
});

test('a bad bench flag is a start-up error (exit 2) naming the flag given', () => {
  for (const [flag, value] of [
    ['--interval', 'abc'],
    ['--job-hours', '0'],
  ]) {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts/bench-fleet.mjs'), flag, value], { encoding: 'utf8' });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 2, stderr: `bench-fleet: invalid ${flag}: ${value}\n` });
  }
});
