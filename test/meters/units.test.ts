import { readFileSync } from 'fs';
import { resolve } from 'path';
import { parse as parseYaml } from 'yaml';
import { parseConfig, ConfigError } from '../../exporter/src/config';
import { startExporter } from '../../exporter/src/exporter';
import { CoolingAccounting } from '../../exporter/src/model/cooling';
import type { SeriesDelta } from '../../exporter/src/model/energy';
import { EnergyModel } from '../../exporter/src/model/energy';
import { createMeterSources } from '../../exporter/src/source-factory';
import { pointsToReading } from '../../exporter/src/sources/meters/common';
import { decodeRegisters } from '../../exporter/src/sources/meters/modbus';
import { resolveRegister } from '../../exporter/src/sources/meters/schema';
import { snmpProfilePoints } from '../../exporter/src/sources/meters/snmp';
import type { Reading } from '../../exporter/src/core';
import { silentLogger } from '../../exporter/src/util/log';

/** The pieces of the meters without a peer: share accounting, register decoding, config checks. */

const cfg = { mode: 'pue' as const, pue: 1.5, supplyAirCelsius: 20 };
const s = (
  device: string,
  domain: 'cooling' | 'facility' | 'cpu',
  joules: number,
  component: SeriesDelta['component'] = 'cooling',
): SeriesDelta => ({
  component,
  domain,
  device,
  source: domain === 'cpu' ? 'rapl' : 'snmp',
  joules,
  watts: joules,
});
const noForget = { forget: () => undefined };

describe('CoolingAccounting', () => {
  test('share = node IT / room IT from the IT meters, once they cover a whole interval', () => {
    const acc = new CoolingAccounting(cfg, { cooling: ['crac'], it: ['ups'] });
    const tick = (cool: number, room: number, it: number) => {
      const series = [s('crac', 'cooling', cool), s('ups', 'facility', room), s('cpu', 'cpu', it, 'compute')];
      const share = acc.apply(series, it, 1, noForget);
      return { share, series };
    };
    // First tick: the IT meter has no previous reading yet → no share → the model.
    const t0 = tick(0, 0, 0);
    expect(t0.share).toBeUndefined();
    expect(t0.series.find((x) => x.source === 'model')).toBeDefined();
    const t1 = tick(1000, 10000, 500);
    expect(t1.share).toBeCloseTo(0.05, 12);
    expect(t1.series.find((x) => x.device === 'crac')?.joules).toBeCloseTo(50, 12);
    expect(t1.series.some((x) => x.device === 'ups')).toBe(false); // IT meters are not node energy
    expect(t1.series.some((x) => x.source === 'model')).toBe(false);
    // The IT meter misses a tick: the last share is kept.
    const t2 = acc.apply([s('crac', 'cooling', 2000), s('cpu', 'cpu', 100, 'compute')], 100, 1, noForget);
    expect(t2).toBeCloseTo(0.05, 12);
    expect(acc.notices()[0]).toMatch(/measured by crac \(snmp\); share 0\.0500/);
  });

  test('a constant share; all cooling meters down → the model, and the down meters are forgotten', () => {
    const forgotten: string[] = [];
    const acc = new CoolingAccounting(cfg, { cooling: ['a', 'b'], it: [], share: 0.25 });
    const series = [s('a', 'cooling', 400), s('b', 'cooling', 400)];
    expect(acc.apply(series, 1000, 1, noForget)).toBe(0.25);
    expect(series.reduce((x, y) => x + y.joules, 0)).toBeCloseTo(200, 12);
    const none: SeriesDelta[] = [s('cpu', 'cpu', 1000, 'compute')];
    expect(acc.apply(none, 1000, 1, { forget: (r) => forgotten.push(r.device) })).toBeUndefined();
    expect(none.find((x) => x.source === 'model')?.joules).toBeCloseTo(500, 12);
    expect(forgotten.sort()).toEqual(['a', 'b']);
    expect(acc.notices()[0]).toMatch(/PUE model \(PUE 1\.5\), source="model": no cooling meter answered \(down: a, b\)/);
  });

  test('a power meter returning after an outage restarts from a new baseline (no trapezoid across the gap)', () => {
    const model = new EnergyModel();
    const acc = new CoolingAccounting(cfg, { cooling: ['p'], it: [], share: 1 });
    const r = (w: number): Reading => ({ kind: 'power', component: 'cooling', domain: 'cooling', device: 'p', source: 'modbus', watts: w });
    const step = (t: number, readings: Reading[]) => {
      acc.prepare(readings, model);
      const st = model.step(t, readings);
      acc.apply(st.series, 0, 1, model);
      return st.series.filter((x) => x.device === 'p').reduce((a, x) => a + x.joules, 0);
    };
    expect(step(0, [r(100)])).toBe(0);
    expect(step(1000, [r(100)])).toBe(100);
    expect(step(2000, [])).toBe(0); // down
    expect(step(60000, [r(100)])).toBe(0); // back: a baseline, not 58 s × 100 W
    expect(step(61000, [r(100)])).toBe(100);
  });

  test('coarse IT meters (APC tenths of kWh): share = Σ node IT / Σ room IT over the intervals since the last step', () => {
    const acc = new CoolingAccounting(cfg, { cooling: ['crac'], it: ['pdu'] });
    // Room IT 5 kW metered in 0.1 kWh = 360 kJ steps: flat for 71 intervals, then one step; node IT 1 kW.
    const tick = (room: number) => acc.apply([s('crac', 'cooling', 100), s('pdu', 'facility', room)], 1000, 1, noForget);
    tick(0); // baseline
    let share: number | undefined;
    for (let i = 0; i < 3; i++) {
      for (let k = 1; k < 72; k++) tick(0);
      share = tick(360_000);
    }
    // 72 s × 1 kW / 360 kJ = 0.2, not 1 kJ / 360 kJ from the stepping interval alone.
    expect(share).toBeCloseTo(0.2, 12);
  });

  test('all cooling meters down → the model; the model also covers the interval a meter comes back on (no gap, no double count)', () => {
    const model = new EnergyModel();
    const acc = new CoolingAccounting(cfg, { cooling: ['crac'], it: [], share: 1 });
    const r = (kwh: number): Reading => ({
      kind: 'counter',
      component: 'cooling',
      domain: 'cooling',
      device: 'crac',
      source: 'snmp',
      joules: kwh * 3.6e6,
    });
    const it: Reading = { kind: 'mean_power', component: 'compute', domain: 'cpu', device: 'cpu', source: 'test', watts: 1000 };
    const cooling = (t: number, meter: Reading[]) => {
      const readings = [...meter, it];
      acc.prepare(readings, model);
      const st = model.step(t, readings);
      acc.apply(st.series, 1000 * st.dt, st.dt, model);
      return st.series.filter((x) => x.component === 'cooling').reduce((a, x) => a + x.joules, 0);
    };
    cooling(0, [r(10)]);
    expect(cooling(1000, [r(10.001)])).toBeCloseTo(3600, 6); // measured
    expect(cooling(2000, [])).toBeCloseTo(500, 6); // down: PUE 1.5 model
    expect(cooling(3000, [r(10.003)])).toBeCloseTo(500, 6); // back: a new baseline, the model covers this interval
    expect(cooling(4000, [r(10.004)])).toBeCloseTo(3600, 6); // measured again, nothing counted twice
  });

  test('without meters: cooling series from other sources are kept as they are (no model on top)', () => {
    const acc = new CoolingAccounting(cfg);
    const series = [{ ...s('crac-x', 'cooling', 10), source: 'other' }, s('cpu', 'cpu', 100, 'compute')];
    acc.apply(series, 100, 1, noForget);
    expect(series.filter((x) => x.component === 'cooling')).toEqual([expect.objectContaining({ device: 'crac-x', joules: 10 })]);
  });
});

describe('meter readings', () => {
  test('energy preferred; unsupported energy (APC −1) falls back to power; thermal points give heat-removed readings', () => {
    const m = { name: 'pdu', role: 'cooling' as const };
    const pts = snmpProfilePoints('apc-rpdu2', 1);
    const e = pointsToReading(m, 'snmp', [
      { ...pts[0], label: 'p', raw: 720 },
      { ...pts[1], label: 'e', raw: 1234 },
    ]);
    expect(e).toMatchObject({ kind: 'counter', joules: 1234 * 0.1 * 3.6e6, source: 'snmp', domain: 'cooling' });
    const p = pointsToReading(m, 'snmp', [
      { ...pts[0], label: 'p', raw: 720 },
      { ...pts[1], label: 'e', raw: null },
    ]);
    expect(p).toMatchObject({ kind: 'power', watts: 7200, source: 'snmp' });
    const t = pointsToReading({ name: 'inrow', role: 'cooling' }, 'snmp', [{ ...snmpProfilePoints('apc-inrow')[0], label: 'c', raw: 125 }]);
    // Heat removed is reported as measured, in thermal watts; the cooling model applies the COP.
    expect(t).toMatchObject({ kind: 'power', watts: 12500, source: 'snmp', heat: {} });
    expect(e).not.toHaveProperty('heat');
    // The InRow profile's supply air (tenths of °C) goes with the heat, to pick the COP; a missing
    // (unsupported) or implausible temperature leaves it to the configured supply air.
    const [cool, air] = snmpProfilePoints('apc-inrow');
    const inrow = { name: 'inrow', role: 'cooling' as const };
    expect(
      pointsToReading(inrow, 'snmp', [
        { ...cool, label: 'c', raw: 125 },
        { ...air, label: 't', raw: 215 },
      ]),
    ).toMatchObject({
      heat: { supplyAirCelsius: 21.5 },
    });
    expect(
      pointsToReading(inrow, 'snmp', [
        { ...cool, label: 'c', raw: 125 },
        { ...air, label: 't', raw: null },
      ]),
    ).toMatchObject({ heat: {} });
    expect(
      pointsToReading(inrow, 'snmp', [
        { ...cool, label: 'c', raw: 125 },
        { ...air, label: 't', raw: 9999 },
      ]),
    ).toEqual(expect.objectContaining({ heat: {} }));
    // Electrical readings never carry it.
    expect(
      pointsToReading(m, 'snmp', [
        { ...pts[0], label: 'p', raw: 720 },
        { ...air, label: 't', raw: 215 },
      ]),
    ).not.toHaveProperty('heat');
    const it = pointsToReading({ name: 'ups', role: 'it' }, 'snmp', [{ ...pts[0], label: 'p', raw: 720 }]);
    expect(it.domain).toBe('facility');
    expect(() => pointsToReading(m, 'snmp', [{ ...pts[0], label: 'OID x', raw: -5 }])).toThrow(
      /meter "pdu" \(snmp\): OID x gives an impossible value -5/,
    );
  });

  test('Modbus registers: word order, signedness, float32; Modicon numbering made explicit', () => {
    expect(decodeRegisters([0x4348, 0x0000], 'float32', 'high-first')).toBe(200);
    expect(decodeRegisters([0x0000, 0x4348], 'float32', 'low-first')).toBe(200);
    expect(decodeRegisters([0x0001, 0x0002], 'uint32', 'high-first')).toBe(65538);
    expect(decodeRegisters([0xffff, 0xfffe], 'int32', 'high-first')).toBe(-2);
    expect(decodeRegisters([0xfffe], 'int16', 'high-first')).toBe(-2);
    expect(resolveRegister({ address: 31001, numbering: 'modicon', table: undefined })).toEqual({ table: 'input', address: 1000 });
    expect(resolveRegister({ address: 40089, numbering: 'modicon', table: undefined })).toEqual({ table: 'holding', address: 88 });
    expect(resolveRegister({ address: 300001, numbering: 'modicon', table: undefined })).toEqual({ table: 'input', address: 0 });
    expect(() => resolveRegister({ address: 31001, numbering: 'modicon', table: 'holding' })).toThrow(
      /input register, but table says holding/,
    );
    expect(() => resolveRegister({ address: 52, numbering: 'zero', table: undefined })).toThrow(/need table/);
  });
});

describe('meters configuration', () => {
  test('the example in docs/meters.md is a valid configuration', () => {
    const md = readFileSync(resolve(__dirname, '../../docs/meters.md'), 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(md)?.[1] ?? '';
    const c = parseConfig(parseYaml(yaml));
    expect(c.meters.map((m) => m.name)).toEqual([
      'crac-1',
      'inrow-3',
      'room-ups-a',
      'crah-custom',
      'crac-2-meter',
      'icom-1',
      'chiller-pump',
      'cdu-1',
      'pdu-row-b',
      'crah-bmc',
    ]);
    expect(createMeterSources(c, silentLogger)).toHaveLength(10);
  });

  test('errors name the field', () => {
    expect(() => parseConfig({ meters: [{ name: 'x', protocol: 'snmp', host: 'h' }] })).toThrow(
      /meters\.0: give a profile or at least one point/,
    );
    expect(() =>
      parseConfig({ meters: [{ name: 'x', protocol: 'snmp', host: 'h', points: [{ oid: 'PowerNet-MIB::x', kind: 'power', unit: 'W' }] }] }),
    ).toThrow(/meters\.0\.points\.0\.oid: numeric OIDs only/);
    expect(() => parseConfig({ meters: [{ name: 'x', protocol: 'snmp', host: 'h', version: '3', profile: 'apc-ups' }] })).toThrow(
      /meters\.0\.user: SNMPv3 needs a user/,
    );
    expect(() =>
      parseConfig({
        meters: [
          {
            name: 'x',
            protocol: 'modbus',
            host: 'h',
            registers: [{ address: 29999, numbering: 'modicon', type: 'uint16', kind: 'power', unit: 'W' }],
          },
        ],
      }),
    ).toThrow(/meters\.0\.registers\.0\.address: Modicon address 29999/);
    expect(() =>
      parseConfig({
        meters: [
          { name: 'a', protocol: 'ipmi' },
          { name: 'a', protocol: 'ipmi' },
        ],
      }),
    ).toThrow(/duplicate meter name "a"/);
    expect(() => parseConfig({ cooling: { share: 1.5 } })).toThrow(/cooling\.share/);
    // An IT meter measures the room's electrical IT energy: heat removed cannot stand for it.
    expect(() => parseConfig({ meters: [{ name: 'x', role: 'it', protocol: 'snmp', host: 'h', profile: 'apc-inrow' }] })).toThrow(
      /meters\.0\.profile: profile apc-inrow reads heat removed .*role: it/,
    );
    expect(() =>
      parseConfig({
        meters: [
          {
            name: 'x',
            role: 'it',
            protocol: 'modbus',
            host: 'h',
            registers: [{ address: 30001, numbering: 'modicon', type: 'uint16', kind: 'thermal_power', unit: 'kW' }],
          },
        ],
      }),
    ).toThrow(/meters\.0\.registers\.0\.kind: thermal_power is heat removed/);
  });

  test('cooling meters without a share or IT meters are refused with a clear message', () => {
    const c = { meters: [{ name: 'crac', protocol: 'snmp', host: 'h', profile: 'apc-rpdu2' }] };
    expect(() => parseConfig(c)).toThrow(ConfigError);
    expect(() => parseConfig(c)).toThrow(/cooling\.share: cooling meters are configured/);
    expect(() => parseConfig({ cooling: { share: 'it-meters' } })).toThrow(
      /cooling\.share: "it-meters" needs at least one meter with role: it/,
    );
    const ok = parseConfig({ cooling: { share: 0.1 }, meters: [{ name: 'crac', protocol: 'snmp', host: 'h', profile: 'apc-rpdu2' }] });
    expect(createMeterSources(ok, silentLogger).map((m) => m.name)).toEqual(['snmp:crac']);
  });

  test('the landing page says when the cooling model stands in, and why', async () => {
    const c = parseConfig({
      web: { listenAddress: '127.0.0.1:0' },
      sources: { rapl: false, cpuModel: false, dramModel: false, diskstats: false, netdev: false, nvml: false },
    });
    const exp = await startExporter(c, { log: silentLogger });
    try {
      const html = await (await fetch(`${exp.url}/`)).text();
      expect(html).toMatch(/cooling: estimated with the PUE model \(PUE 1\.56\), source=&#34;model&#34;: no cooling meter is configured/);
    } finally {
      await exp.close();
    }
  });
});

describe('EnergyModel with coarse meter counters', () => {
  test('a counter that steps after flat intervals is not a glitch: the bound covers the time since it last changed', () => {
    const model = new EnergyModel();
    // An APC rPDU2 at 5 kW: 0.1 kWh (360 kJ) every 72 s; maxPowerWatts 10 kW, read every second.
    const r = (tenths: number): Reading => ({
      kind: 'counter',
      component: 'cooling',
      domain: 'cooling',
      device: 'pdu',
      source: 'snmp',
      joules: tenths * 0.1 * 3.6e6,
      maxPowerWatts: 10_000,
    });
    let total = 0;
    const events: string[] = [];
    let t = 0;
    let tenths = 1000;
    model.step(t, [r(tenths)]);
    for (let step = 0; step < 3; step++) {
      for (let k = 0; k < 72; k++) {
        t += 1000;
        if (k === 71) tenths++;
        const st = model.step(t, [r(tenths)]);
        total += st.series[0].joules;
        events.push(...st.events.map((e) => e.reason));
      }
    }
    expect(events).toEqual([]);
    expect(total).toBeCloseTo(3 * 360_000, 6);
    // A real glitch is still caught: a jump of 10 × 360 kJ one second after a change.
    t += 1000;
    const st = model.step(t, [r(tenths + 10)]);
    expect(st.series[0].joules).toBe(0);
    // Held as a suspect: the next read, back where it was, shows a glitch (counted, nothing lost).
    t += 1000;
    const back = model.step(t, [r(tenths)]);
    expect([...st.events, ...back.events].map((e) => e.reason)).toEqual(['counter_reset']);
    expect(back.series[0].joules).toBe(0);
  });
});

test('a missing credential file names the meter and the field', async () => {
  const { readMeterFile } = await import('../../exporter/src/sources/meters/common');
  await expect(readMeterFile('cdu-1', 'passwordFile', '/nonexistent/cdu-1.pass')).rejects.toThrow(
    'meter cdu-1: cannot read passwordFile /nonexistent/cdu-1.pass: ENOENT',
  );
});
