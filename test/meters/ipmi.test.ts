import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { join, resolve } from 'path';
import type { ChildProcess } from 'child_process';
import { parseConfig, type ConfigInput } from '../../exporter/src/config';
import { createExporter, type Exporter } from '../../exporter/src/exporter';
import { parseIpmiDcmi, parseIpmitoolDcmi } from '../../exporter/src/sources/meters/ipmi';
import { silentLogger } from '../../exporter/src/util/log';
import {
  exportedJoules,
  freeUdpPort,
  requireBinary,
  sleep,
  sourceError,
  sourceUp,
  startPeer,
  StepClock,
  stopPeer,
  tempDir,
} from './helpers';

/**
 * IPMI DCMI meters. The parser runs on captured/formatted tool output; OpenIPMI's ipmi_sim (a real
 * BMC simulator on loopback, which has no DCMI) drives the unsupported, authentication and timeout
 * paths through the real ipmitool; a scripted stand-in for the tool (printing ipmitool's format)
 * drives the integration and outage paths, since no simulator here answers DCMI.
 */

const FIX = resolve(__dirname, '../fixtures/ipmi');
const STEP_S = 1;
const quiet = { rapl: false, cpuModel: false, dramModel: false, diskstats: false, netdev: false, nvml: false };

/**
 * The injected clock steps STEP_S per tick (what the energy integrates over); the configured
 * interval only sets the read timeouts: 10 s gives ipmitool 7 s, which a loaded machine meets
 * (at 1 s a spawn plus an RMCP+ session could overrun 700 ms there).
 */
async function exporterFor(input: ConfigInput, clock: StepClock): Promise<Exporter> {
  const cfg = parseConfig({ sample: { interval: '10s' }, sources: quiet, ...input });
  return createExporter(cfg, { log: silentLogger, clock: clock.fn });
}

/** Ticks until the meter is absent (its DCMI verdict, from the start-up probe or a later read); at most 100 ticks. */
async function untilAbsent(
  exp: Exporter,
  clock: StepClock,
  status: () => { present: boolean; lastError?: string } | undefined,
): Promise<void> {
  for (let i = 0; status()?.present !== false; i++) {
    if (i === 100) throw new Error(`no DCMI verdict after 100 ticks: ${status()?.lastError}`);
    await exp.sampler.tick();
    clock.advance();
    await sleep(50);
  }
}

describe('DCMI output parsers', () => {
  test('ipmitool dcmi power reading: instantaneous watts; deactivated and invalid command are "unsupported"', () => {
    expect(parseIpmitoolDcmi(readFileSync(join(FIX, 'ipmitool-dcmi-power-reading.txt'), 'utf8'))).toEqual({ state: 'ok', watts: 312 });
    expect(parseIpmitoolDcmi(readFileSync(join(FIX, 'ipmitool-dcmi-deactivated.txt'), 'utf8'))).toEqual({
      state: 'unsupported',
      why: 'power reading state is deactivated',
    });
    expect(parseIpmitoolDcmi(readFileSync(join(FIX, 'ipmitool-dcmi-ipmi_sim-unsupported.txt'), 'utf8'))).toMatchObject({
      state: 'unsupported',
    });
    expect(parseIpmitoolDcmi('Error: Unable to establish IPMI v2 / RMCP+ session')).toBeUndefined();
  });

  test('ipmi-dcmi --get-system-power-statistics: current watts; measurement not active is "unsupported"', () => {
    const text = readFileSync(join(FIX, 'ipmi-dcmi-power-statistics.txt'), 'utf8');
    expect(parseIpmiDcmi(text)).toEqual({ state: 'ok', watts: 312 });
    expect(parseIpmiDcmi(text.replace('Active', 'Not Available'))).toEqual({
      state: 'unsupported',
      why: 'power measurement Not Available',
    });
  });
});

describe('IPMI meters against ipmi_sim and a scripted DCMI tool', () => {
  let sim: ChildProcess | undefined;
  let port = 0;
  let dir = '';
  const exps: Exporter[] = [];

  beforeAll(async () => {
    requireBinary('ipmi_sim', 'openipmi');
    requireBinary('ipmitool', 'ipmitool');
    dir = tempDir('ipmi');
    port = await freeUdpPort();
    writeFileSync(
      join(dir, 'lan.conf'),
      [
        'name "jouleflow"',
        'set_working_mc 0x20',
        '  startlan 1',
        `    addr 127.0.0.1 ${port}`,
        '    priv_limit admin',
        '    allowed_auths_callback none md2 md5 straight',
        '    allowed_auths_user none md2 md5 straight',
        '    allowed_auths_operator none md2 md5 straight',
        '    allowed_auths_admin none md2 md5 straight',
        '    guid a123456789abcdefa123456789abcdef',
        '  endlan',
        'user 2 true "admin" "simsecret" admin 10 none md2 md5 straight',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'sim.emu'),
      'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n',
    );
    sim = startPeer('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', dir, '-n', '-p']).proc;
    await sleep(500);
  });

  afterAll(async () => {
    for (const e of exps) await e.close();
    await stopPeer(sim);
  });

  /** A wrapper around ipmitool that counts its invocations. */
  function countingIpmitool(): { path: string; calls: () => number } {
    const log = join(dir, `calls-${Math.random().toString(36).slice(2)}`);
    const path = `${log}.sh`;
    writeFileSync(path, `#!/bin/sh\necho x >> ${log}\nexec ipmitool "$@"\n`);
    chmodSync(path, 0o755);
    return { path, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0) };
  }

  test('a BMC without DCMI (ipmi_sim: Invalid command c1) is absent once, with the reason, and never polled again', async () => {
    const tool = countingIpmitool();
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share: 1 },
        meters: [
          {
            name: 'bmc-sim',
            protocol: 'ipmi',
            host: '127.0.0.1',
            port,
            username: 'admin',
            password: 'simsecret',
            cipherSuite: 3,
            command: tool.path,
          },
        ],
      },
      clock,
    );
    exps.push(exp);
    const status = () => exp.sampler.statuses.find((s) => s.name === 'ipmi:bmc-sim');
    // The verdict comes from the start-up probe, or, when a slow machine made the probe time out,
    // from the first read that gets ipmi_sim's answer.
    await untilAbsent(exp, clock, status);
    expect(status()?.lastError).toMatch(
      /meter "bmc-sim" \(ipmi\): ipmitool 127\.0\.0\.1:\d+: the BMC does not support DCMI power readings \(Invalid command \(c1\)\)/,
    );
    const calls = tool.calls();
    expect(calls).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 5; i++) {
      await exp.sampler.tick();
      clock.advance();
    }
    expect(status()?.present).toBe(false);
    expect(tool.calls()).toBe(calls); // never polled again
    expect(exp.sampler.coolingNotices.join(' ')).toMatch(/source="model"/);
  }, 30000);

  test('a start-up probe that times out is no verdict: the first read that finds DCMI unsupported makes the meter absent', async () => {
    const n = join(dir, 'slow-n');
    const fake = join(dir, 'slow-then-unsupported.sh');
    // The first call (the probe) hangs past the meter's timeout; later calls answer like ipmi_sim.
    writeFileSync(
      fake,
      `#!/bin/sh
c=$(cat ${n} 2>/dev/null || echo 0); c=$((c+1)); echo $c > ${n}
if [ $c -eq 1 ]; then sleep 60; fi
cat ${join(FIX, 'ipmitool-dcmi-ipmi_sim-unsupported.txt')}
exit 1
`,
    );
    chmodSync(fake, 0o755);
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      { cooling: { share: 1 }, meters: [{ name: 'bmc-slow', protocol: 'ipmi', host: '127.0.0.1', port, command: fake, timeout: '300ms' }] },
      clock,
    );
    exps.push(exp);
    const calls = () => Number(readFileSync(n, 'utf8'));
    const status = () => exp.sampler.statuses.find((s) => s.name === 'ipmi:bmc-slow');
    expect(status()?.present).toBe(true); // the probe timed out: no verdict yet
    await untilAbsent(exp, clock, status);
    expect(status()?.lastError).toMatch(
      /meter "bmc-slow" \(ipmi\): ipmitool 127\.0\.0\.1:\d+: the BMC does not support DCMI power readings/,
    );
    const seen = calls();
    expect(seen).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 5; i++) {
      await exp.sampler.tick();
      clock.advance();
    }
    expect(status()?.present).toBe(false);
    expect(calls()).toBe(seen);
  }, 60000);

  test('wrong password and a dead BMC: clear errors naming the meter; the dead one within its timeout', async () => {
    const dead = await freeUdpPort();
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      {
        cooling: { share: 1 },
        meters: [
          { name: 'bmc-badpass', protocol: 'ipmi', host: '127.0.0.1', port, username: 'admin', password: 'wrong', cipherSuite: 3 },
          {
            name: 'bmc-dead',
            protocol: 'ipmi',
            host: '127.0.0.1',
            port: dead,
            username: 'admin',
            password: 'x',
            cipherSuite: 3,
            timeout: '400ms',
          },
        ],
      },
      clock,
    );
    exps.push(exp);
    await exp.sampler.tick();
    expect(sourceUp(exp, 'ipmi:bmc-badpass')).toBe(false);
    expect(sourceError(exp, 'ipmi:bmc-badpass')).toMatch(
      /meter "bmc-badpass" \(ipmi\): ipmitool 127\.0\.0\.1:\d+: cannot open an IPMI session/,
    );
    expect(sourceError(exp, 'ipmi:bmc-dead')).toMatch(
      /meter "bmc-dead" \(ipmi\): ipmitool 127\.0\.0\.1:\d+: (no answer within 400ms|cannot open an IPMI session)/,
    );
  }, 30000);

  test('power readings are integrated (trapezoid of the served watts × share); an outage is not bridged', async () => {
    const served = join(dir, 'served.log');
    const down = join(dir, 'down');
    const counter = join(dir, 'n');
    const fake = join(dir, 'fake-ipmitool.sh');
    // Prints ipmitool's DCMI format with a power that changes on every call, logging each value.
    writeFileSync(
      fake,
      `#!/bin/sh
if [ -e ${down} ]; then echo "Error: Unable to establish IPMI v2 / RMCP+ session" >&2; exit 1; fi
n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}
w=$((2000 + 37 * (n % 5)))
echo $w >> ${served}
sed "s/312 Watts/$w Watts/" ${join(FIX, 'ipmitool-dcmi-power-reading.txt')}
`,
    );
    chmodSync(fake, 0o755);
    const share = 0.3;
    const clock = new StepClock(STEP_S * 1000);
    const exp = await exporterFor(
      { cooling: { share }, meters: [{ name: 'crah-bmc', protocol: 'ipmi', host: '127.0.0.1', port, command: fake }] },
      clock,
    );
    exps.push(exp);
    const tick = async () => {
      await exp.sampler.tick();
      clock.advance();
    };
    for (let i = 0; i < 5; i++) await tick();
    writeFileSync(down, '');
    for (let i = 0; i < 3; i++) await tick();
    expect(sourceUp(exp, 'ipmi:crah-bmc')).toBe(false);
    expect(sourceError(exp, 'ipmi:crah-bmc')).toMatch(/meter "crah-bmc" \(ipmi\)/);
    rmSync(down);
    for (let i = 0; i < 4; i++) await tick();
    expect(sourceUp(exp, 'ipmi:crah-bmc')).toBe(true);
    const w = readFileSync(served, 'utf8').split('\n').filter(Boolean).map(Number);
    expect(w).toHaveLength(1 + 5 + 4); // the init probe, 5 reads before the outage, 4 after
    const reads = w.slice(1);
    const trap = (xs: number[]) => xs.slice(1).reduce((acc, x, i) => acc + ((xs[i] + x) / 2) * STEP_S, 0);
    const expected = (trap(reads.slice(0, 5)) + trap(reads.slice(5))) * share;
    const got = await exportedJoules(exp, { component: 'cooling', device: 'crah-bmc', source: 'ipmi' });
    expect(Math.abs(got - expected) / expected).toBeLessThan(0.005);
    console.log(`IPMI accuracy: ${got} J vs ${expected} J`);
  }, 30000);
});
