import { Metrics } from '../../exporter/src/metrics';
import { Sampler } from '../../exporter/src/sampler';
import type { SampleResult, Source } from '../../exporter/src/sources/types';
import { SourceError } from '../../exporter/src/sources/types';
import { silentLogger } from '../../exporter/src/util/log';
import { metricSum, readTrace } from '../nvml/fake-nvml';

/**
 * Issue 10 §2: a single missed power read (a timeout during a machine stall) must not drop the
 * energy between the last good sample and the recovery. Replays the real bursty H200 training
 * recording's power at 250 ms through the sampler, with one read failing at the highest-power
 * instant; the expected energy is the trapezoid over the samples that were read, computed here.
 */

const INTERVAL_MS = 250;
const [training] = readTrace('training-trace.json');

/** Power (W) of the recording at offset x seconds: the last sample at or before x. */
function powerAt(x: number): number {
  const t0 = training.samples[0].t;
  let w = training.samples[0].power_mw / 1000;
  for (const s of training.samples) {
    if (s.t - t0 > x) break;
    w = s.power_mw / 1000;
  }
  return w;
}

class ReplayedPower implements Source {
  readonly name = 'nvml';
  constructor(
    private readonly at: () => number,
    private readonly fails: (tick: number) => boolean,
  ) {}
  private ticks = 0;
  async init() {
    return true;
  }
  async sample(): Promise<SampleResult> {
    const tick = this.ticks++;
    if (this.fails(tick)) throw new SourceError('timeout', 'no answer (stalled machine)');
    return {
      readings: [
        { kind: 'power', component: 'compute', domain: 'gpu', device: 'gpu0', source: 'nvml-power', watts: powerAt(this.at() / 1000) },
      ],
    };
  }
}

async function replay(ticks: number, missed: Set<number>): Promise<{ exported: number; expected: number }> {
  let now = 0;
  const metrics = new Metrics();
  const src = new ReplayedPower(
    () => now,
    (i) => missed.has(i),
  );
  const sampler = new Sampler({
    sources: [src],
    metrics,
    log: silentLogger,
    intervalMs: INTERVAL_MS,
    timeoutMs: 200,
    cooling: { mode: 'pue', pue: 1, supplyAirCelsius: 20 },
    cpuCount: 1,
    clock: () => now,
  });
  await sampler.init();
  const read: Array<[number, number]> = [];
  for (let i = 0; i < ticks; i++) {
    if (!missed.has(i)) read.push([now / 1000, powerAt(now / 1000)]);
    await sampler.tick();
    now += INTERVAL_MS;
  }
  let expected = 0;
  for (let i = 1; i < read.length; i++) expected += ((read[i - 1][1] + read[i][1]) / 2) * (read[i][0] - read[i - 1][0]);
  return { exported: await metricSum(metrics.nodeEnergy, { source: 'nvml-power', device: 'gpu0' }), expected };
}

test('one missed power read is bridged by the trapezoid: nothing lost on a bursty real H200 recording', async () => {
  const ticks = Math.floor(((training.samples[training.samples.length - 1].t - training.samples[0].t) * 1000) / INTERVAL_MS);
  // Miss the read at the highest-power instant, where a dropped gap costs the most.
  let worst = 1;
  for (let i = 1; i < ticks - 1; i++) if (powerAt((i * INTERVAL_MS) / 1000) > powerAt((worst * INTERVAL_MS) / 1000)) worst = i;
  const { exported, expected } = await replay(ticks, new Set([worst]));
  expect(expected).toBeGreaterThan(20_000); // the recording: 25.4 kJ over 75 s
  expect(exported).toBeCloseTo(expected, 6);
  // What the old re-baseline dropped: the two intervals around the missed read.
  const clean = await replay(ticks, new Set());
  const bridgedAway = clean.expected - expected;
  expect(Math.abs(bridgedAway)).toBeLessThan(powerAt((worst * INTERVAL_MS) / 1000) * 0.5);
});

test('a long outage (beyond the gap bound) re-baselines instead of inventing a trapezoid over it', async () => {
  // 10 s bound at 250 ms: an outage of 60 ticks (15 s) is not integrated.
  const out = new Set(Array.from({ length: 60 }, (_, i) => 40 + i));
  const { exported, expected } = await replay(200, out);
  const t0 = (39 * INTERVAL_MS) / 1000;
  const t1 = (100 * INTERVAL_MS) / 1000;
  const bridge = ((powerAt(t0) + powerAt(t1)) / 2) * (t1 - t0);
  expect(exported).toBeCloseTo(expected - bridge, 6);
});
