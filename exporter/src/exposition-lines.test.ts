import fc from 'fast-check';
import { ByPosition, ByteWriter, SeriesLine, formatValue } from './exposition-lines';

/**
 * The byte machinery against what Prometheus reads: every value written parses back (as Go's
 * ParseFloat reads the exposition) to the double it came from, in the exact text the exposition
 * has always had (ECMAScript's shortest round-trip form, pinned by test/e2e/e2e-output.txt),
 * whether the line was formatted anew or reused from the tick before.
 */

/** The exposition's float grammar: Go's ParseFloat inputs Prometheus writes, plus NaN and ±Inf. */
const FLOAT = /^(NaN|[+-]Inf|-?(\d+(\.\d+)?|\.\d+)(e[+-]\d+)?)$/;

function parsePrometheusFloat(text: string): number {
  if (text === 'NaN') return NaN;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

const special = fc.constantFrom(
  0,
  -0,
  NaN,
  Infinity,
  -Infinity,
  5e-324,
  -5e-324,
  Number.MAX_VALUE,
  1e21,
  1e-7,
  0.1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 31),
);
const value = fc.oneof(
  fc.double(),
  fc.double({ min: 0, max: 1e12, noNaN: true }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double({ min: -1e-300, max: 1e-300, noNaN: true }),
  special,
);

test('formatValue: every double parses back to itself (-0 as 0) in the shortest round-trip text', () => {
  fc.assert(
    fc.property(value, (v) => {
      const text = formatValue(v);
      expect(text).toMatch(FLOAT);
      const back = parsePrometheusFloat(text);
      if (Number.isNaN(v)) expect(back).toBeNaN();
      else expect(back).toBe(v === 0 ? 0 : v);
      if (Number.isFinite(v)) expect(text).toBe(String(v));
    }),
    { numRuns: 5000 },
  );
});

const text = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

test('each tick, lines written (new, reused, or copied in runs from the last tick) are exactly prefix + value + newline in UTF-8', () => {
  const prefix = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => `m{l="${s}"} `);
  // Per tick: which lines, in which order, each with a value from a small set (so that many stay
  // the same); whether the writer continues last tick's (copies) or starts afresh; a constant line
  // written between them at times (breaking runs); runs of a long family grow the buffer.
  const tick = fc.record({
    order: fc.array(fc.nat(), { maxLength: 12 }),
    values: fc.array(fc.oneof(fc.constantFrom(0, 1, 2.5, NaN, -Infinity), value), { minLength: 12, maxLength: 12 }),
    chained: fc.boolean(),
    breaks: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
  });
  fc.assert(
    fc.property(fc.array(prefix, { minLength: 1, maxLength: 8 }), fc.array(tick, { minLength: 1, maxLength: 12 }), (prefixes, ticks) => {
      const lines = prefixes.map((p) => new SeriesLine(p));
      const separator = Buffer.from('# between\n');
      let last: ByteWriter | undefined;
      for (const t of ticks) {
        const out = new ByteWriter(t.chained ? last : undefined);
        let expected = '';
        for (const [k, i] of t.order.entries()) {
          const which = i % lines.length;
          lines[which].write(out, t.values[which]);
          expected += `${prefixes[which]}${text(t.values[which])}\n`;
          if (t.breaks[k]) {
            out.bytes(separator);
            expected += '# between\n';
          }
        }
        expect(out.length).toBe(Buffer.byteLength(expected));
        expect(out.result().toString('utf8')).toBe(Buffer.from(expected, 'utf8').toString('utf8'));
        expect(out.result().equals(Buffer.from(expected, 'utf8'))).toBe(true);
        last = out;
      }
    }),
    { numRuns: 1000 },
  );
});

test('ByPosition finds each key its own value however the list is reordered, grown or shrunk', () => {
  const keys = fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { maxLength: 8 });
  fc.assert(
    fc.property(fc.array(keys, { maxLength: 10 }), (lists) => {
      const byPosition = new ByPosition<string, { key: string }>();
      for (const list of lists) {
        let made = 0;
        list.forEach((key, i) => {
          const v = byPosition.get(i, key, (k) => {
            made++;
            return { key: k };
          });
          expect(v.key).toBe(key);
        });
        byPosition.truncate(list.length);
        expect(made).toBeLessThanOrEqual(list.length);
      }
    }),
  );
  // A list in the same order as last time makes nothing new.
  const byPosition = new ByPosition<string, string>();
  let made = 0;
  const make = (k: string) => (made++, k.toUpperCase());
  for (let tick = 0; tick < 3; tick++) ['x', 'y', 'z'].forEach((k, i) => byPosition.get(i, k, make));
  expect(made).toBe(3);
});
