import { createSocket } from 'dgram';
import { parseConfig, type ConfigInput } from '../../exporter/src/config';
import { createExporter, type Exporter } from '../../exporter/src/exporter';
import { silentLogger } from '../../exporter/src/util/log';
import { exportedJoules, FixedIt, PATIENT, sleep, sourceError, sourceUp, StepClock, tempDir, warningLogger } from './helpers';
import { SnmpPeer } from './snmp-peer';

/**
 * SNMP meters against a real Debian snmpd (v2c and v3 authPriv) on loopback. Expected energies
 * are computed here from the values the agent logged as served.
 */

const RPDU_POWER = (i: number) => `1.3.6.1.4.1.318.1.1.26.4.3.1.5.${i}`;
const RPDU_ENERGY = (i: number) => `1.3.6.1.4.1.318.1.1.26.4.3.1.9.${i}`;
const GEIST_POWER = '1.3.6.1.4.1.21239.5.2.3.1.1.9.1';
const GEIST_ENERGY = '1.3.6.1.4.1.21239.5.2.3.1.1.12.1';
const UPS_POWER = '1.3.6.1.2.1.33.1.4.4.1.4.1';
const INROW_COOL = '1.3.6.1.4.1.318.1.1.13.3.2.2.2.2.0';
/** airIRRCUnitStatusSupplyAirTempMetric.0, tenths of °C. */
const INROW_SUPPLY_AIR = '1.3.6.1.4.1.318.1.1.13.3.2.2.2.9.0';
const V3 = { user: 'jfmeter', auth: 'authpass-4711', priv: 'privpass-4711' };
const STEP_S = 1;
const NODE_IT_W = 1000;

const quiet = { rapl: false, cpuModel: false, dramModel: false, diskstats: false, netdev: false, nvml: false };

async function exporterFor(input: ConfigInput, clock: StepClock): Promise<Exporter> {
  const cfg = parseConfig({ sample: { interval: `${STEP_S}s` }, sources: quiet, ...input });
  return createExporter(cfg, { log: silentLogger, clock: clock.fn, extraSources: [new FixedIt(NODE_IT_W)] });
}

async function tickN(exp: Exporter, clock: StepClock, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    clock.advance();
    await exp.sampler.tick();
  }
}

const diffs = (xs: number[]) => xs.slice(1).map((x, i) => x - xs[i]);
/** COP of a CRAC at supply-air T (Moore et al. 2005), written out here: the InRow reads 21.5 °C. */
const cop21_5 = 0.0068 * 21.5 * 21.5 + 0.0008 * 21.5 + 0.458;

describe('SNMP meters against a real snmpd', () => {
  let a: SnmpPeer;
  let b: SnmpPeer;
  const exps: Exporter[] = [];

  /** The APC InRow on agent B, read over SNMPv3 authPriv. */
  const inrowV3 = (name: string) => ({
    name,
    protocol: 'snmp' as const,
    host: '127.0.0.1',
    port: b.port,
    version: '3' as const,
    user: { name: V3.user, authKey: V3.auth, privKey: V3.priv },
    profile: 'apc-inrow' as const,
  });

  beforeAll(async () => {
    // Peer A: an APC rack PDU feeding a CRAC (cooling) and a UPS-MIB UPS feeding a CRAH (power only).
    a = new SnmpPeer(tempDir('snmpd-a'), {
      passRoots: ['1.3.6.1.4.1.318.1.1.26', '1.3.6.1.2.1.33'],
      series: {
        [RPDU_ENERGY(1)]: { base: 123_400, rate: 20 }, // tenths of kWh
        [RPDU_POWER(1)]: { base: 720, rate: 0 }, // hundredths of kW
        [UPS_POWER]: { base: 5000, rate: 0 }, // W
      },
    });
    // Peer B: the room's IT feed (Geist PDU, Wh) and an APC InRow (thermal), v2c and v3 authPriv.
    b = new SnmpPeer(tempDir('snmpd-b'), {
      passRoots: ['1.3.6.1.4.1.21239', '1.3.6.1.4.1.318.1.1.26'],
      overrides: { [INROW_COOL]: 125, [INROW_SUPPLY_AIR]: 215 },
      series: {
        [GEIST_ENERGY]: { base: 9_000_000, rate: 100 }, // Wh
        [GEIST_POWER]: { base: 360_000, rate: 0 }, // W
        [RPDU_ENERGY(2)]: { base: 50_000, rate: 10 },
        [RPDU_POWER(2)]: { base: 360, rate: 0 },
      },
      v3: V3,
    });
    await Promise.all([a.start(), b.start()]);
  }, 90_000);

  afterAll(async () => {
    for (const e of exps) await e.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('cooling energy = Σ served ΔE × (node IT / room IT), v2c and v3 authPriv, InRow thermal through the COP', async () => {
    // Cross-check the agent with Net-SNMP's snmpget (its reads are logged too, before the window).
    expect(Number(a.get(RPDU_ENERGY(1)))).toBeGreaterThanOrEqual(123_400);
    expect(Number(b.get(RPDU_ENERGY(2), V3))).toBeGreaterThanOrEqual(50_000);
    expect(b.get(INROW_COOL, V3)).toBe('125');
    expect(b.get(INROW_SUPPLY_AIR, V3)).toBe('215');
    const before = { a: a.served(), b: b.served() };
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share: 'it-meters' },
        meters: [
          { name: 'crac-pdu', protocol: 'snmp', host: '127.0.0.1', port: a.port, profile: 'apc-rpdu2' },
          {
            name: 'crac-v3',
            protocol: 'snmp',
            host: '127.0.0.1',
            port: b.port,
            version: '3',
            user: { name: V3.user, authKey: V3.auth, privKey: V3.priv },
            profile: 'apc-rpdu2',
            index: 2,
          },
          inrowV3('inrow-1'),
          { name: 'room-it', role: 'it', protocol: 'snmp', host: '127.0.0.1', port: b.port, profile: 'geist-pdu' },
        ],
        sample: PATIENT,
      },
      clock,
    );
    exps.push(exp);
    await exp.sampler.tick();
    await tickN(exp, clock, 10);
    for (const s of ['snmp:crac-pdu', 'snmp:crac-v3', 'snmp:inrow-1', 'snmp:room-it']) expect([s, sourceUp(exp, s)]).toEqual([s, true]);

    const sa = a.served();
    const sb = b.served();
    const window = (m: Map<string, number[]>, prev: Map<string, number[]>, oid: string) =>
      (m.get(oid) ?? []).slice(prev.get(oid)?.length ?? 0);
    const cracE = window(sa, before.a, RPDU_ENERGY(1));
    const v3E = window(sb, before.b, RPDU_ENERGY(2));
    const roomE = window(sb, before.b, GEIST_ENERGY);
    expect(cracE).toHaveLength(11);
    expect(roomE).toHaveLength(11);
    // share per interval = node IT (1000 W × 1 s) / room IT (ΔWh × 3600)
    const shares = diffs(roomE).map((dwh) => (NODE_IT_W * STEP_S) / (dwh * 3600));
    const expectCrac = diffs(cracE).reduce((acc, d, i) => acc + d * 0.1 * 3.6e6 * shares[i], 0);
    const expectV3 = diffs(v3E).reduce((acc, d, i) => acc + d * 0.1 * 3.6e6 * shares[i], 0);
    // 12.5 kW of heat removed at the 21.5 °C supply air the unit reports (not the configured 20 °C).
    const expectInrow = shares.reduce((acc, sh) => acc + ((12.5 * 1000) / cop21_5) * STEP_S * sh, 0);

    const gotCrac = await exportedJoules(exp, { component: 'cooling', device: 'crac-pdu', source: 'snmp' });
    const gotV3 = await exportedJoules(exp, { component: 'cooling', device: 'crac-v3', source: 'snmp' });
    const gotInrow = await exportedJoules(exp, { component: 'cooling', device: 'inrow-1', source: 'snmp-cop' });
    expect(expectCrac).toBeGreaterThan(0);
    expect(Math.abs(gotCrac - expectCrac) / expectCrac).toBeLessThan(0.005);
    expect(Math.abs(gotV3 - expectV3) / expectV3).toBeLessThan(0.005);
    expect(Math.abs(gotInrow - expectInrow) / expectInrow).toBeLessThan(0.005);
    // Thermal output is never passed off as measured electrical energy; IT meters are not node energy.
    expect(await exportedJoules(exp, { device: 'inrow-1', source: 'snmp' })).toBe(0);
    expect(await exportedJoules(exp, { device: 'room-it' })).toBe(0);
    expect(await exportedJoules(exp, { component: 'cooling', source: 'model' })).toBe(0);
    expect(exp.sampler.coolingNotices.join(' ')).toMatch(/measured by .*crac-pdu \(snmp\)/);
    console.log(
      `SNMP accuracy: crac-pdu ${gotCrac.toFixed(3)} J vs ${expectCrac.toFixed(3)} J; crac-v3 ${gotV3.toFixed(3)} vs ${expectV3.toFixed(3)}; inrow ${gotInrow.toFixed(4)} vs ${expectInrow.toFixed(4)}`,
    );
  }, 60000);

  test('an agent killed mid-run: its meters go down, the others keep counting, recovery without a jump', async () => {
    const before = { a: a.served(), b: b.served() };
    const clock = new StepClock(STEP_S * 1000);
    const share = 0.25;
    const exp = await exporterFor(
      {
        cooling: { share },
        meters: [
          { name: 'crac-pdu', protocol: 'snmp', host: '127.0.0.1', port: a.port, profile: 'apc-rpdu2' },
          { name: 'crah-ups', protocol: 'snmp', host: '127.0.0.1', port: a.port, profile: 'ups-mib', timeout: '3s' },
          { name: 'crac-b', protocol: 'snmp', host: '127.0.0.1', port: b.port, profile: 'apc-rpdu2', index: 2 },
        ],
        sample: PATIENT,
      },
      clock,
    );
    exps.push(exp);
    await exp.sampler.tick();
    await tickN(exp, clock, 4);
    await a.stop();
    await tickN(exp, clock, 3);
    expect(sourceUp(exp, 'snmp:crac-pdu')).toBe(false);
    expect(sourceUp(exp, 'snmp:crah-ups')).toBe(false);
    expect(sourceError(exp, 'snmp:crac-pdu')).toMatch(/meter "crac-pdu"/);
    expect(sourceUp(exp, 'snmp:crac-b')).toBe(true);
    expect(exp.sampler.coolingNotices.join(' ')).toMatch(/down: crac-pdu, crah-ups/);
    await a.start();
    // Recovery within a bound (two meters share the restarted agent, one with a short timeout):
    // tick until both answer again, then two more ticks in the steady state.
    const recovered = () => sourceUp(exp, 'snmp:crac-pdu') && sourceUp(exp, 'snmp:crah-ups');
    // First the agent itself (sysDescr, answered by snmpd, not logged as a served reading), in real time.
    for (let i = 0; i < 100 && a.get('1.3.6.1.2.1.1.1.0') === undefined; i++) await sleep(100);
    let ticks = 5 + 3;
    for (let i = 0; i < 5 && !recovered(); i++, ticks++) await tickN(exp, clock, 1);
    expect(recovered()).toBe(true);
    await tickN(exp, clock, 2);
    ticks += 2;
    expect(recovered()).toBe(true);

    const window = (m: Map<string, number[]>, prev: Map<string, number[]>, oid: string) =>
      (m.get(oid) ?? []).slice(prev.get(oid)?.length ?? 0);
    const cracE = window(a.served(), before.a, RPDU_ENERGY(1));
    const bE = window(b.served(), before.b, RPDU_ENERGY(2));
    const upsP = window(a.served(), before.a, UPS_POWER);
    expect(bE).toHaveLength(ticks); // the other agent answered every tick
    // Counter: the delta across the outage is the energy that really flowed (no jump, no loss).
    const expectCrac = (cracE[cracE.length - 1] - cracE[0]) * 0.1 * 3.6e6 * share;
    const expectB = (bE[bE.length - 1] - bE[0]) * 0.1 * 3.6e6 * share;
    const got = async (device: string) => exportedJoules(exp, { component: 'cooling', device, source: 'snmp' });
    expect(Math.abs((await got('crac-pdu')) - expectCrac) / expectCrac).toBeLessThan(0.005);
    expect(Math.abs((await got('crac-b')) - expectB) / expectB).toBeLessThan(0.005);
    // Power: a cooling meter returning after an outage restarts from a new baseline (the cooling
    // accounting, model/cooling.ts, must not count the outage twice); integrated between
    // consecutive answered ticks: 5 before the kill, the rest after recovery. With patient
    // timeouts every value the agent served was used.
    expect(cracE).toHaveLength(ticks - 3);
    expect(upsP).toHaveLength(ticks - 3);
    const trap = (xs: number[]) => diffs(xs).reduce((acc, _d, i) => acc + ((xs[i] + xs[i + 1]) / 2) * STEP_S, 0);
    const expectUps = (trap(upsP.slice(0, 5)) + trap(upsP.slice(5))) * share;
    expect(Math.abs((await got('crah-ups')) - expectUps) / expectUps).toBeLessThan(0.005);
    expect(await exportedJoules(exp, { component: 'cooling', source: 'model' })).toBe(0);
  }, 60000);

  test('wrong community, wrong v3 key, wrong OID: clear errors naming the meter; no meter → the model, said on the page', async () => {
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share: 0.5 },
        meters: [
          {
            name: 'bad-community',
            protocol: 'snmp',
            host: '127.0.0.1',
            port: b.port,
            community: 'nope',
            profile: 'geist-pdu',
            timeout: '300ms',
          },
          {
            name: 'bad-key',
            protocol: 'snmp',
            host: '127.0.0.1',
            port: b.port,
            version: '3',
            user: { name: V3.user, authKey: 'wrong-auth-key', privKey: V3.priv },
            profile: 'apc-inrow',
            // The agent's answer (a report PDU) must beat the timeout, or the error is a timeout.
            timeout: '3s',
          },
          {
            name: 'bad-oid',
            protocol: 'snmp',
            host: '127.0.0.1',
            port: b.port,
            points: [{ oid: '.1.3.6.1.4.1.21239.5.2.3.1.1.99.1', kind: 'power', unit: 'W' }],
          },
        ],
        // bad-oid's noSuch comes from the pass script (a Python process per query): patient, so
        // a loaded machine gives the agent's answer, not a timeout. bad-community must time out.
        sample: PATIENT,
      },
      clock,
    );
    exps.push(exp);
    await exp.sampler.tick();
    await tickN(exp, clock, 2);
    expect(sourceUp(exp, 'snmp:bad-community')).toBe(false);
    expect(sourceError(exp, 'snmp:bad-community')).toMatch(/meter "bad-community" \(snmp\).*no answer.*community/);
    expect(sourceError(exp, 'snmp:bad-key')).toMatch(/meter "bad-key" \(snmp\): v3 127\.0\.0\.1:\d+: authentication failed/);
    expect(sourceError(exp, 'snmp:bad-oid')).toMatch(
      /meter "bad-oid" \(snmp\): OID 1\.3\.6\.1\.4\.1\.21239\.5\.2\.3\.1\.1\.99\.1 .*(NoSuch|noSuch)/,
    );
    const notice = exp.sampler.coolingNotices.join(' ');
    expect(notice).toMatch(/source="model": no cooling meter answered/);
    const it = NODE_IT_W * STEP_S * 2;
    expect(await exportedJoules(exp, { component: 'cooling', source: 'model' })).toBeCloseTo(it * 0.56, 6);
    const errors = await exp.metrics.sourceErrors.get();
    expect(errors.values.some((v) => v.labels.reader === 'snmp:bad-oid' && v.labels.reason === 'bad_oid' && v.value >= 1)).toBe(true);
  }, 60000);

  test('a supply-air OID the agent lacks is missing, not a failure: logged once, the meter keeps its reading', async () => {
    const clock = new StepClock(STEP_S * 1000);
    const { log, warnings } = warningLogger();
    const share = 0.5;
    const cfg = parseConfig({
      sources: quiet,
      sample: PATIENT,
      cooling: { share },
      meters: [
        {
          ...inrowV3('inrow-2'),
          points: [{ oid: '.1.3.6.1.4.1.318.1.1.13.3.2.2.2.99.0', kind: 'supply_air_temperature', unit: 'C', scale: 0.1 }],
        },
      ],
    });
    const exp = await createExporter(cfg, { log, clock: clock.fn, extraSources: [new FixedIt(NODE_IT_W)] });
    exps.push(exp);
    await exp.sampler.tick();
    await tickN(exp, clock, 3);
    expect(sourceError(exp, 'snmp:inrow-2')).toBeUndefined();
    expect(sourceUp(exp, 'snmp:inrow-2')).toBe(true);
    // 12.5 kW of heat removed, through the COP at the 21.5 °C the profile's own supply-air OID reads.
    const expected = ((12.5 * 1000) / cop21_5) * STEP_S * 3 * share;
    const got = await exportedJoules(exp, { component: 'cooling', device: 'inrow-2', source: 'snmp-cop' });
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.005);
    const air = warnings.filter((w) => w.includes('supply-air'));
    expect(air).toHaveLength(1);
    expect(air[0]).toMatch(/"meter":"inrow-2","point":"OID 1\.3\.6\.1\.4\.1\.318\.1\.1\.13\.3\.2\.2\.2\.99\.0"/);
  }, 60000);

  test('a community never shows in errors, even where net-snmp quotes it (response community mismatch)', async () => {
    // A relay in front of the real snmpd: the meter's community "S3cr3t" goes in as "public" (same
    // length, so the BER stays valid), and the answer comes back as "publiX": net-snmp then rejects
    // it with "Community 'S3cr3t' in request does not match …".
    const agent = createSocket('udp4');
    const relay = createSocket('udp4');
    let client: { address: string; port: number } | undefined;
    const swap = (buf: Buffer, from: string, to: string) => {
      const i = buf.indexOf(from);
      if (i >= 0) buf.write(to, i, 'latin1');
      return buf;
    };
    relay.on('message', (msg, rinfo) => {
      client = { address: rinfo.address, port: rinfo.port };
      agent.send(swap(msg, 'S3cr3t', 'public'), b.port, '127.0.0.1');
    });
    agent.on('message', (msg) => {
      if (client) relay.send(swap(msg, 'public', 'publiX'), client.port, client.address);
    });
    await new Promise<void>((r) => agent.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
    try {
      const clock = new StepClock(STEP_S * 1000);
      const exp = await exporterFor(
        {
          cooling: { share: 0.5 },
          meters: [
            {
              name: 'relayed',
              protocol: 'snmp',
              host: '127.0.0.1',
              port: relay.address().port,
              community: 'S3cr3t',
              profile: 'geist-pdu',
              // Long enough for the relayed answer on a loaded machine: the mismatch is what is tested.
              timeout: '3s',
            },
          ],
          sample: PATIENT,
        },
        clock,
      );
      exps.push(exp);
      await exp.sampler.tick();
      expect(client).toBeDefined(); // the relay was used
      const err = sourceError(exp, 'snmp:relayed') ?? '';
      expect(err).toMatch(/meter "relayed" \(snmp\)/);
      expect(err).not.toContain('S3cr3t');
    } finally {
      agent.close();
      relay.close();
    }
  }, 30000);
});
