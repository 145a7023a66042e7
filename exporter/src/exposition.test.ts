import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { renderSliced } from './exposition';

test('sliced rendering writes exactly what prom-client writes (NaN spelled as Prometheus does)', async () => {
  const registry = new Registry();
  const c = new Counter({ name: 'x_total', help: 'a "quoted" help\\with\nnewline', labelNames: ['a', 'b'], registers: [registry] });
  const g = new Gauge({ name: 'y', help: 'gauge', registers: [registry] });
  const h = new Histogram({ name: 'z_seconds', help: 'hist', labelNames: ['s'], buckets: [0.1, 1], registers: [registry] });
  for (let i = 0; i < 25; i++) c.inc({ a: `v${i}`, b: 'q"uo\\te\nline ünï' }, i * 1.5);
  g.set(NaN);
  h.observe({ s: 'nvml' }, 0.05);
  h.observe({ s: 'nvml' }, 5);
  const expected = (await registry.metrics()).replace(/ Nan$/gm, ' NaN');
  expect(await renderSliced(registry, 7)).toBe(expected);
});
