import { execFile, execFileSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';
import { parseConfig, type ConfigInput } from '../../exporter/src/config';
import { createExporter, type Exporter } from '../../exporter/src/exporter';
import { RedfishMeterSource } from '../../exporter/src/sources/meters/redfish';
import { silentLogger } from '../../exporter/src/util/log';
import { exportedJoules, FixedIt, PATIENT, requireBinary, sleep, sourceError, sourceUp, StepClock, tempDir } from './helpers';
import { RedfishServer } from './redfish-server';

/**
 * Redfish meters against a Redfish service serving the DMTF mockups (test/fixtures/redfish, BSD-3)
 * with time-based energy increments. Expected values come from what the service served (its log)
 * and from the fixture documents; redfishtool cross-checks the service.
 */

const STEP_S = 1;
const NODE_IT_W = 1000;
const USER = 'jouleflow';
const PASS = 'redfish-pass';
const quiet = { rapl: false, cpuModel: false, dramModel: false, diskstats: false, netdev: false, nvml: false };
const cop20 = 0.0068 * 20 * 20 + 0.0008 * 20 + 0.458;
const diffs = (xs: number[]) => xs.slice(1).map((x, i) => x - xs[i]);

/** Patient read timeouts (helpers.ts): every document served is used; the clock steps STEP_S. */
async function exporterFor(input: ConfigInput, clock: StepClock): Promise<Exporter> {
  const cfg = parseConfig({ sample: PATIENT, sources: quiet, ...input });
  return createExporter(cfg, { log: silentLogger, clock: clock.fn, extraSources: [new FixedIt(NODE_IT_W)] });
}

async function run(exp: Exporter, clock: StepClock, ticks: number): Promise<void> {
  for (let i = 0; i < ticks; i++) {
    await sleep(15); // real time passes, so the served energy grows between reads
    clock.advance();
    await exp.sampler.tick();
  }
}

const meter = (name: string, srv: RedfishServer, extra: Record<string, unknown> = {}) => ({
  name,
  protocol: 'redfish' as const,
  url: `http://127.0.0.1:${srv.port}`,
  username: USER,
  password: PASS,
  minInterval: '1ms',
  ...extra,
});

describe('Redfish meters against the DMTF mockups', () => {
  const rack = new RedfishServer({ mockup: 'public-rackmount1', username: USER, password: PASS, kwhPerSecond: 0.5 });
  const pdu = new RedfishServer({ mockup: 'public-pdu', username: USER, password: PASS, kwhPerSecond: 2 });
  const cdu = new RedfishServer({ mockup: 'public-cooling-unit', username: USER, password: PASS, kwhPerSecond: 0 });
  // The same server with the newer resources hidden: discovery must fall back to the deprecated Power.
  const old = new RedfishServer({
    mockup: 'public-rackmount1',
    username: USER,
    password: PASS,
    kwhPerSecond: 0,
    overlay: {
      '/redfish/v1/Chassis/1U': (d) => {
        const { PowerSubsystem: _a, EnvironmentMetrics: _b, Sensors: _c, ...rest } = d;
        return rest;
      },
    },
  });
  // Without PSU metrics: power from EnvironmentMetrics, energy from the chassis-total sensor,
  // whose LifetimeReading (not cleared by ResetMetrics) wins over Reading.
  const sensors = new RedfishServer({
    mockup: 'public-rackmount1',
    username: USER,
    password: PASS,
    kwhPerSecond: 1,
    overlay: {
      '/redfish/v1/Chassis/1U': (d) => {
        const { PowerSubsystem: _a, ...rest } = d;
        return rest;
      },
      '/redfish/v1/Chassis/1U/Sensors/TotalEnergy': (d) => ({ ...d, LifetimeReading: (d.Reading as number) + 1000 }),
    },
  });
  const exps: Exporter[] = [];

  beforeAll(async () => {
    await Promise.all([rack.start(), pdu.start(), cdu.start(), old.start(), sensors.start()]);
  });

  afterAll(async () => {
    for (const e of exps) await e.close();
    await Promise.all([rack.stop(), pdu.stop(), cdu.stop(), old.stop(), sensors.stop()]);
  });

  test('redfishtool cross-check of the service', async () => {
    requireBinary('redfishtool', 'redfishtool');
    // The service runs in this process: the client must run asynchronously.
    const redfishtool = (password: string) =>
      new Promise<{ code: number; stdout: string }>((ok) =>
        execFile(
          'redfishtool',
          ['-r', `127.0.0.1:${old.port}`, '-S', 'Never', '-u', USER, '-p', password, 'Chassis', '-I', '1U', 'Power'],
          (err, stdout) => ok({ code: err ? Number(err.code ?? 1) : 0, stdout }),
        ),
      );
    const r = await redfishtool(PASS);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { PowerControl: Array<{ PowerConsumedWatts: number }> };
    expect(doc.PowerControl[0].PowerConsumedWatts).toBe(344);
    expect((await redfishtool('wrong')).code).not.toBe(0);
  }, 60_000);

  test('chassis discovery: PSU Metrics energy counter (basic auth); exported = served ΔkWh × share within 0.5 %', async () => {
    const share = 0.5;
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor({ cooling: { share }, meters: [meter('rack-1u', rack)] }, clock);
    exps.push(exp);
    const before = rack.servedAt('/redfish/v1/Chassis/1U/PowerSubsystem/PowerSupplies/Bay1/Metrics').length;
    await exp.sampler.tick();
    await run(exp, clock, 8);
    expect(sourceUp(exp, 'redfish:rack-1u')).toBe(true);
    // Bay2 is Absent, so Bay1 is every present PSU; its EnergykWh is the counter.
    const served = rack.servedAt('/redfish/v1/Chassis/1U/PowerSubsystem/PowerSupplies/Bay1/Metrics').slice(before);
    expect(served.length).toBe(9);
    const expected = (served[served.length - 1] - served[0]) * 3.6e6 * share;
    const got = await exportedJoules(exp, { component: 'cooling', device: 'rack-1u', source: 'redfish' });
    expect(expected).toBeGreaterThan(0);
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.005);
    console.log(`Redfish accuracy (PSU EnergykWh): ${got.toFixed(3)} J vs ${expected.toFixed(3)} J`);
  }, 30000);

  test('discovery without PSU metrics: the chassis TotalEnergy sensor, LifetimeReading preferred', async () => {
    const share = 0.5;
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor({ cooling: { share }, meters: [meter('rack-sensors', sensors)] }, clock);
    exps.push(exp);
    const path = '/redfish/v1/Chassis/1U/Sensors/TotalEnergy#LifetimeReading';
    const before = sensors.servedAt(path).length;
    await exp.sampler.tick();
    await run(exp, clock, 6);
    expect(sourceError(exp, 'redfish:rack-sensors')).toBeUndefined();
    const served = sensors.servedAt(path).slice(before);
    expect(served).toHaveLength(7);
    const expected = (served[served.length - 1] - served[0]) * 3.6e6 * share;
    const got = await exportedJoules(exp, { component: 'cooling', device: 'rack-sensors', source: 'redfish' });
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.005);
  }, 30000);

  test('discovery falls back to the deprecated Power resource (PowerConsumedWatts, integrated)', async () => {
    const share = 0.5;
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor({ cooling: { share }, meters: [meter('old-bmc', old)] }, clock);
    exps.push(exp);
    await exp.sampler.tick();
    await run(exp, clock, 5);
    const watts = (old.fixture('/redfish/v1/Chassis/1U/Power').PowerControl as Array<{ PowerConsumedWatts: number }>)[0].PowerConsumedWatts;
    const expected = watts * STEP_S * 5 * share;
    const got = await exportedJoules(exp, { component: 'cooling', device: 'old-bmc', source: 'redfish' });
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.005);
  }, 30000);

  test('facility equipment: rack PDU as the IT meter, CDU heat through the COP (session auth); rate limit', async () => {
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share: 'it-meters' },
        meters: [
          meter('cdu-1', cdu, { resource: '/redfish/v1/ThermalEquipment/CDUs/1', auth: 'session' }),
          meter('pdu-room', pdu, { role: 'it', resource: '/redfish/v1/PowerEquipment/RackPDUs/1', auth: 'session' }),
        ],
      },
      clock,
    );
    exps.push(exp);
    const before = pdu.servedAt('/redfish/v1/PowerEquipment/RackPDUs/1/Metrics').length;
    await exp.sampler.tick();
    await run(exp, clock, 8);
    expect(sourceUp(exp, 'redfish:cdu-1')).toBe(true);
    const room = pdu.servedAt('/redfish/v1/PowerEquipment/RackPDUs/1/Metrics').slice(before);
    expect(room).toHaveLength(9);
    // The CDU mockup has no electrical reading: its heat-load sensor (kW) goes through the COP.
    const heatKw = cdu.fixture('/redfish/v1/Chassis/CDU/Sensors/PrimaryHeatLoad').Reading as number;
    let share = 0;
    const expected = diffs(room).reduce((acc, dkwh) => {
      if (dkwh > 0) share = (NODE_IT_W * STEP_S) / (dkwh * 3.6e6);
      return acc + ((heatKw * 1000) / cop20) * STEP_S * share;
    }, 0);
    const got = await exportedJoules(exp, { component: 'cooling', device: 'cdu-1', source: 'redfish-cop' });
    expect(expected).toBeGreaterThan(0);
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.005);
    expect(await exportedJoules(exp, { device: 'cdu-1', source: 'redfish' })).toBe(0);
    expect(await exportedJoules(exp, { device: 'pdu-room' })).toBe(0);
    console.log(`Redfish accuracy (CDU heat via COP, PDU share): ${got.toFixed(4)} J vs ${expected.toFixed(4)} J`);

    // Rate limit: with minInterval 1 h, ten ticks make one round of requests.
    const src = new RedfishMeterSource(
      parseConfig({
        cooling: { share: 1 },
        meters: [meter('slow-bmc', pdu, { resource: '/redfish/v1/PowerEquipment/RackPDUs/1', minInterval: '1h' })],
      }).meters[0] as never,
      500,
      silentLogger,
    );
    await src.init();
    const ac = new AbortController();
    const first = await src.sample({ now: 0, signal: ac.signal });
    const afterFirst = src.requests;
    for (let i = 0; i < 10; i++) expect(await src.sample({ now: i, signal: ac.signal })).toEqual(first);
    expect(src.requests).toBe(afterFirst);
    await src.close();
  }, 30000);

  test('an IT meter that finds only heat-removed sensors is refused, never counted as room IT energy', async () => {
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share: 1 },
        meters: [meter('cdu-as-it', cdu, { role: 'it', resource: '/redfish/v1/ThermalEquipment/CDUs/1', auth: 'session' })],
      },
      clock,
    );
    exps.push(exp);
    await exp.sampler.tick();
    await run(exp, clock, 3);
    expect(sourceUp(exp, 'redfish:cdu-as-it')).toBe(false);
    expect(sourceError(exp, 'redfish:cdu-as-it')).toMatch(
      /meter "cdu-as-it" \(redfish\): .*no power or energy reading found.*only heat-removed/,
    );
    expect(await exportedJoules(exp, { device: 'cdu-as-it' })).toBe(0);
  }, 30000);

  test('a service killed mid-run: that meter goes down, the other keeps counting, recovery without a jump', async () => {
    const share = 0.25;
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share },
        // The stopped service closes its connections: refused at once, no short timeout needed (a
        // short one could fire on a loaded machine while the service still runs).
        meters: [meter('rack-a', rack), meter('pdu-b', pdu, { resource: '/redfish/v1/PowerEquipment/RackPDUs/1' })],
      },
      clock,
    );
    exps.push(exp);
    const rackPath = '/redfish/v1/Chassis/1U/PowerSubsystem/PowerSupplies/Bay1/Metrics';
    const pduPath = '/redfish/v1/PowerEquipment/RackPDUs/1/Metrics';
    const r0 = rack.servedAt(rackPath).length;
    const p0 = pdu.servedAt(pduPath).length;
    await exp.sampler.tick();
    await run(exp, clock, 3);
    await rack.stop();
    await run(exp, clock, 3);
    expect(sourceUp(exp, 'redfish:rack-a')).toBe(false);
    expect(sourceError(exp, 'redfish:rack-a')).toMatch(/meter "rack-a" \(redfish\)/);
    expect(sourceUp(exp, 'redfish:pdu-b')).toBe(true);
    await rack.start();
    await run(exp, clock, 3);
    expect(sourceUp(exp, 'redfish:rack-a')).toBe(true);
    const rs = rack.servedAt(rackPath).slice(r0);
    const ps = pdu.servedAt(pduPath).slice(p0);
    expect(ps).toHaveLength(10);
    const expectRack = (rs[rs.length - 1] - rs[0]) * 3.6e6 * share;
    const expectPdu = (ps[ps.length - 1] - ps[0]) * 3.6e6 * share;
    const gotRack = await exportedJoules(exp, { component: 'cooling', device: 'rack-a', source: 'redfish' });
    const gotPdu = await exportedJoules(exp, { component: 'cooling', device: 'pdu-b', source: 'redfish' });
    expect(Math.abs(gotRack - expectRack) / expectRack).toBeLessThan(0.005);
    expect(Math.abs(gotPdu - expectPdu) / expectPdu).toBeLessThan(0.005);
  }, 30000);

  test('wrong password (basic and session), wrong resource: clear errors naming the meter', async () => {
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share: 1 },
        meters: [
          meter('bad-basic', pdu, { password: 'nope', resource: '/redfish/v1/PowerEquipment/RackPDUs/1' }),
          meter('bad-session', pdu, { password: 'nope', auth: 'session', resource: '/redfish/v1/PowerEquipment/RackPDUs/1' }),
          meter('bad-resource', pdu, { resource: '/redfish/v1/PowerEquipment/RackPDUs/9' }),
        ],
      },
      clock,
    );
    exps.push(exp);
    await exp.sampler.tick();
    expect(sourceError(exp, 'redfish:bad-basic')).toMatch(
      /meter "bad-basic" \(redfish\): GET \/redfish\/v1\/PowerEquipment\/RackPDUs\/1: HTTP 401: wrong username or password/,
    );
    expect(sourceError(exp, 'redfish:bad-session')).toMatch(/meter "bad-session" \(redfish\): .*login refused \(HTTP 401\)/);
    expect(sourceError(exp, 'redfish:bad-resource')).toMatch(
      /meter "bad-resource" \(redfish\): GET \/redfish\/v1\/PowerEquipment\/RackPDUs\/9: HTTP 404/,
    );
  }, 30000);

  test('rate limit also after a failure: a refusing BMC is asked at most once per minInterval', async () => {
    const src = new RedfishMeterSource(
      parseConfig({
        cooling: { share: 1 },
        meters: [meter('refusing-bmc', pdu, { password: 'nope', resource: '/redfish/v1/PowerEquipment/RackPDUs/1', minInterval: '1h' })],
      }).meters[0] as never,
      500,
      silentLogger,
    );
    await src.init();
    const ac = new AbortController();
    const served = pdu.requests;
    await expect(src.sample({ now: 0, signal: ac.signal })).rejects.toThrow(/meter "refusing-bmc" \(redfish\): .*HTTP 401/);
    const afterFirst = pdu.requests;
    expect(afterFirst).toBeGreaterThan(served);
    for (let i = 0; i < 10; i++) await expect(src.sample({ now: i, signal: ac.signal })).rejects.toThrow(/HTTP 401/);
    expect(pdu.requests).toBe(afterFirst);
    await src.close();
  }, 30000);

  test('HTTPS: the CA file verifies the service; without it a clear TLS error; insecure: true skips verification', async () => {
    requireBinary('openssl', 'openssl');
    const dir = tempDir('redfish-tls');
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      {
        stdio: 'ignore',
      },
    );
    const tls = new RedfishServer({
      mockup: 'public-pdu',
      username: USER,
      password: PASS,
      kwhPerSecond: 1,
      tls: { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') },
    });
    await tls.start();
    try {
      const clock = new StepClock(STEP_S * 1000);
      const m = (name: string, extra: Record<string, unknown>) => ({
        ...meter(name, tls, { resource: '/redfish/v1/PowerEquipment/RackPDUs/1', ...extra }),
        url: `https://127.0.0.1:${tls.port}`,
      });
      const exp = await exporterFor(
        { cooling: { share: 1 }, meters: [m('tls-ca', { caFile: cert }), m('tls-none', {}), m('tls-insecure', { insecure: true })] },
        clock,
      );
      exps.push(exp);
      await exp.sampler.tick();
      await run(exp, clock, 2);
      expect(sourceUp(exp, 'redfish:tls-ca')).toBe(true);
      expect(sourceUp(exp, 'redfish:tls-insecure')).toBe(true);
      expect(sourceUp(exp, 'redfish:tls-none')).toBe(false);
      expect(sourceError(exp, 'redfish:tls-none')).toMatch(
        /meter "tls-none" \(redfish\): https:\/\/127\.0\.0\.1:\d+: TLS verification failed .*caFile/,
      );
      expect(await exportedJoules(exp, { device: 'tls-ca', source: 'redfish' })).toBeGreaterThan(0);
    } finally {
      await tls.stop();
    }
  }, 30000);
});
