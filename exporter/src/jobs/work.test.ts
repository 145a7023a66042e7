import {
  applyWorkBody,
  energyPerUnit,
  lifetimeEnergyPerUnit,
  MAX_LINE_LENGTH,
  MAX_UNITS_PER_JOB,
  parseWorkLine,
  perMillionUnits,
  workBodySchema,
  WorkHistory,
  WorkLineReader,
  WorkTally,
  type WorkSample,
} from './work';

const E = (compute: number, transmit = 0, store = 0, cooling = 0) => ({ compute, transmit, store, cooling });

describe('WorkTally', () => {
  test('cumulative totals are monotonic: equal is a no-op, lower is a 409 with a reason', () => {
    const t = new WorkTally();
    expect(t.setTotal('tokens', 1000)).toEqual({ ok: true, unit: 'tokens', total: 1000, delta: 1000 });
    expect(t.setTotal('tokens', 1000)).toEqual({ ok: true, unit: 'tokens', total: 1000, delta: 0 });
    const lower = t.setTotal('tokens', 999);
    expect(lower).toMatchObject({ ok: false, status: 409 });
    expect(lower.ok === false && lower.reason).toMatch(/999 is lower than the 1000/);
    expect(t.get('tokens')).toBe(1000);
  });

  test('increments add; totals and increments of one unit mix', () => {
    const t = new WorkTally();
    for (let i = 0; i < 5; i++) t.add('steps', 1);
    expect(t.get('steps')).toBe(5);
    expect(t.setTotal('steps', 10)).toMatchObject({ ok: true, delta: 5 });
    expect(t.add('steps', 2)).toMatchObject({ ok: true, total: 12, delta: 2 });
    expect(t.snapshot()).toEqual({ steps: 12 });
  });

  test.each([
    ['', /empty/],
    ['Tokens', /\[a-z\]/],
    ['1tokens', /\[a-z\]/],
    ['tok-ens', /\[a-z\]/],
    ['t'.repeat(33), /longer than 32/],
  ])('unit %j is refused (400)', (unit, reason) => {
    const r = new WorkTally().setTotal(unit, 1);
    expect(r).toMatchObject({ ok: false, status: 400 });
    expect(r.ok === false && r.reason).toMatch(reason);
  });

  test.each([-1, 1.5, NaN, Infinity, 2 ** 53])('value %p is refused (400)', (n) => {
    expect(new WorkTally().setTotal('tokens', n)).toMatchObject({ ok: false, status: 400 });
    expect(new WorkTally().add('tokens', n)).toMatchObject({ ok: false, status: 400 });
  });

  test('the number of units per job is bounded; known units keep working', () => {
    const t = new WorkTally();
    for (let i = 0; i < MAX_UNITS_PER_JOB; i++) expect(t.setTotal(`u${i}`, 1).ok).toBe(true);
    expect(t.setTotal('one_more', 1)).toMatchObject({ ok: false, status: 400 });
    expect(t.setTotal('u0', 2).ok).toBe(true);
  });

  test('an increment that would pass 2^53 − 1 is refused and loses nothing', () => {
    const t = new WorkTally();
    t.setTotal('tokens', Number.MAX_SAFE_INTEGER - 1);
    expect(t.add('tokens', 5)).toMatchObject({ ok: false, status: 400 });
    expect(t.get('tokens')).toBe(Number.MAX_SAFE_INTEGER - 1);
  });
});

describe('workBodySchema (POST /api/v1/jobs/{id}/work)', () => {
  test('accepts {"unit":"tokens","total":5554176}', () => {
    expect(workBodySchema.parse({ unit: 'tokens', total: 5554176 })).toEqual({ unit: 'tokens', total: 5554176 });
  });
  test.each([
    [{ unit: 'tokens' }, 'total'],
    [{ unit: 'Tokens', total: 1 }, 'unit'],
    [{ unit: 'tokens', total: -1 }, 'total'],
    [{ unit: 'tokens', total: 1.5 }, 'total'],
    [{ unit: 'tokens', total: '5' }, 'total'],
    [{ unit: 'tokens', total: 1, extra: 1 }, ''],
  ])('refuses %j, naming %j', (body, field) => {
    const r = workBodySchema.safeParse(body);
    expect(r.success).toBe(false);
    if (!r.success && field) expect(r.error.issues.map((i) => i.path.join('.'))).toContain(field);
  });
});

describe('applyWorkBody (the API handler core)', () => {
  test('200 with the total; 409 with a reason on a lower total; 400 naming the field', () => {
    const t = new WorkTally();
    expect(applyWorkBody(t, { unit: 'tokens', total: 5554176 })).toEqual({ status: 200, body: { unit: 'tokens', total: 5554176 } });
    const lower = applyWorkBody(t, { unit: 'tokens', total: 16384 });
    expect(lower.status).toBe(409);
    expect(lower.body).toEqual({ error: expect.stringMatching(/16384 is lower than the 5554176/) });
    const bad = applyWorkBody(t, { unit: 'tokens', total: -1 });
    expect(bad).toEqual({ status: 400, body: { error: expect.stringMatching(/^total: /) } });
    expect(applyWorkBody(t, 'tokens 5')).toEqual({ status: 400, body: { error: expect.stringMatching(/^body: /) } });
    for (let i = 0; i < MAX_UNITS_PER_JOB - 1; i++) applyWorkBody(t, { unit: `u${i}`, total: 1 });
    expect(applyWorkBody(t, { unit: 'one_too_many', total: 1 }).status).toBe(400);
    expect(t.get('tokens')).toBe(5554176);
  });
});

describe('work-file lines', () => {
  test.each([
    ['tokens 5554176', { unit: 'tokens', kind: 'total', value: 5554176 }],
    ['steps +1', { unit: 'steps', kind: 'increment', value: 1 }],
    ['  samples\t+16\r', { unit: 'samples', kind: 'increment', value: 16 }],
  ])('%j parses', (line, update) => {
    expect(parseWorkLine(line)).toEqual({ ok: true, update });
  });

  test('blank lines are skipped', () => {
    expect(parseWorkLine('   ')).toEqual({ ok: true, update: null });
  });

  test.each(['# tokens 5', 'tokens', 'tokens -3', 'tokens 1.5', 'tokens 1e6', 'tokens 5 6', 'Tokens 5', 'tokens 99999999999999999'])(
    '%j is refused with a reason',
    (line) => {
      const r = parseWorkLine(line);
      expect(r.ok).toBe(false);
      expect(r.ok === false && r.reason.length).toBeGreaterThan(5);
    },
  );

  test('the reader keeps a partial last line for the next chunk and numbers lines', () => {
    const r = new WorkLineReader();
    expect(r.push('tokens 10\nsteps +1\ntok')).toEqual({
      updates: [
        { unit: 'tokens', kind: 'total', value: 10 },
        { unit: 'steps', kind: 'increment', value: 1 },
      ],
      errors: [],
    });
    const next = r.push('ens 20\ngarbage!\n');
    expect(next.updates).toEqual([{ unit: 'tokens', kind: 'total', value: 20 }]);
    expect(next.errors).toEqual([expect.objectContaining({ line: 4, text: 'garbage!' })]);
    expect(r.push('steps +2').updates).toEqual([]);
    expect(r.flush().updates).toEqual([{ unit: 'steps', kind: 'increment', value: 2 }]);
  });

  test('a runaway line is dropped once, bounded, and reading resumes after its newline', () => {
    const r = new WorkLineReader();
    const first = r.push('x'.repeat(MAX_LINE_LENGTH + 1));
    expect(first.errors).toHaveLength(1);
    expect(r.push('y'.repeat(10_000)).errors).toHaveLength(0);
    expect(r.push('zzz\ntokens 7\n')).toEqual({ updates: [{ unit: 'tokens', kind: 'total', value: 7 }], errors: [] });
  });
});

describe('energy per unit', () => {
  test('ΔE/Δwork per component over the same interval', () => {
    const a: WorkSample = { t: 0, energy: E(100, 10, 5, 50), work: { tokens: 1000 } };
    const b: WorkSample = { t: 10_000, energy: E(500, 30, 5, 250), work: { tokens: 3000 } };
    const r = energyPerUnit(a, b, 'tokens');
    expect(r?.work).toBe(2000);
    expect(r?.seconds).toBe(10);
    expect(r?.joulesPerUnit.compute).toBeCloseTo(0.2, 12);
    expect(r?.joulesPerUnit.transmit).toBeCloseTo(0.01, 12);
    expect(r?.joulesPerUnit.store).toBe(0);
    expect(r?.joulesPerUnit.cooling).toBeCloseTo(0.1, 12);
    expect(r?.joulesPerUnit.total).toBeCloseTo(0.31, 12);
  });

  test('no work in the interval: no figure (never Infinity)', () => {
    const a: WorkSample = { t: 0, energy: E(0), work: { tokens: 5 } };
    const b: WorkSample = { t: 1000, energy: E(10), work: { tokens: 5 } };
    expect(energyPerUnit(a, b, 'tokens')).toBeUndefined();
    expect(energyPerUnit(a, b, 'steps')).toBeUndefined();
    expect(lifetimeEnergyPerUnit(E(10), 0, 'tokens', 1)).toBeUndefined();
  });

  test('the documented error bound 2·(Δt + p)/T holds for a steady trainer sampled at the tick', () => {
    // A trainer at a constant 1000 W doing 16 384 tokens/s reports every p seconds; the exporter
    // ticks every Δt and sees the last report that arrived. True J/token = 1000 / 16384.
    const truth = 1000 / 16384;
    for (const [dt, p, windowS] of [
      [1, 1, 300],
      [1, 0.37, 300],
      [5, 2, 300],
      [1, 10, 1800],
    ]) {
      const h = new WorkHistory(2 * windowS * 1000);
      let worst = 0;
      for (let t = 0; t <= 3 * windowS; t += dt) {
        const lastReport = Math.floor(t / p) * p; // the work counted up to the last report
        h.record({ t: t * 1000, energy: E(1000 * t), work: { tokens: Math.round(16384 * lastReport) } });
        if (t >= windowS) {
          const r = h.window('tokens', windowS * 1000);
          worst = Math.max(worst, Math.abs((r?.joulesPerUnit.total ?? 0) - truth) / truth);
        }
      }
      expect({ dt, p, withinBound: worst <= (2 * (dt + p)) / windowS }).toEqual({ dt, p, withinBound: true });
    }
  });

  test('history: windows use the newest sample at or before the window start; lifetime from the first', () => {
    const h = new WorkHistory(60_000);
    for (let s = 0; s <= 600; s += 10) h.record({ t: s * 1000, energy: E(s < 300 ? 2 * s : 600 + 4 * (s - 300)), work: { steps: s } });
    // the last 5 minutes: 4 J per second, 1 step per second
    expect(h.window('steps', 60_000)?.joulesPerUnit.compute).toBeCloseTo(4, 12);
    // lifetime: (600 + 1200) J over 600 steps
    expect(h.lifetime('steps')?.joulesPerUnit.compute).toBeCloseTo(3, 12);
    expect(h.length).toBeLessThan(10);
    expect(h.record({ t: 1, energy: E(0), work: {} })).toBe(false);
  });
});

describe('per million units', () => {
  test('4 mJ/token = 1.111 kWh per million tokens; CO₂ and cost only when configured', () => {
    // 0.004 J × 1e6 = 4000 J = 4000 / 3.6e6 kWh
    expect(perMillionUnits(0.004).kwh).toBeCloseTo(4000 / 3.6e6, 15);
    expect(perMillionUnits(0.004)).not.toHaveProperty('gramsCo2');
    const r = perMillionUnits(3.6, { gramsPerKwh: 56, pricePerKwh: 0.2 });
    expect(r.kwh).toBeCloseTo(1, 12);
    expect(r.gramsCo2).toBeCloseTo(56, 10);
    expect(r.cost).toBeCloseTo(0.2, 12);
  });
});
