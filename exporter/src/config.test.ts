import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { resolveConfig } from './cli/serve';
import { ConfigError, parseConfig, parseListenAddress } from './config';
import { parseDuration } from './util/duration';

describe('durations', () => {
  test.each([
    ['250ms', 250],
    ['1s', 1000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
  ])('%s = %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  test.each(['', '10', '1x', 's', '1s2'])('rejects %p', (text) => expect(() => parseDuration(text)).toThrow(/invalid duration/));
});

describe('config', () => {
  test('defaults', () => {
    const c = parseConfig({});
    expect(c.web.listenAddress).toBe(':10042');
    expect(c.sample.interval).toBe(1000);
    expect(c.cooling).toEqual({ mode: 'pue', pue: 1.56, supplyAirCelsius: 20 });
    expect(c.dram.wattsPerGigabyte).toBeUndefined(); // unset: the inventory or 0.392 W/GiB (inventory/choices.ts)
  });

  test('parseConfig returns resolved values: the read timeout in use, 80 % of the interval unless set', () => {
    const t: number = parseConfig({ sample: { interval: '10s' } }).sample.timeout;
    expect(t).toBe(8000);
    expect(parseConfig({}).sample).toEqual({ interval: 1000, timeout: 800 });
    expect(parseConfig({ sample: { interval: '10s', timeout: '2s' } }).sample).toEqual({ interval: 10_000, timeout: 2000 });
    // A meter's read timeout: 70 % of the interval, or as set, always under 90 % of the sampler's.
    const meters = (sample: object, timeout?: string) =>
      parseConfig({ sample, cooling: { share: 1 }, meters: [{ name: 'm', protocol: 'ipmi', ...(timeout && { timeout }) }] }).meters[0]
        .timeout;
    expect(meters({ interval: '10s' })).toBe(7000);
    expect(meters({ interval: '10s', timeout: '5s' })).toBe(4500);
    expect(meters({ interval: '10s' }, '2s')).toBe(2000);
    expect(meters({ interval: '10s' }, '9s')).toBe(7200);
  });

  test('an invalid field is named with the reason', () => {
    expect(() => parseConfig({ cooling: { pue: 0.5 } })).toThrow(/cooling\.pue: Number must be greater than or equal to 1/);
    expect(() => parseConfig({ sample: { interval: '50ms' } })).toThrow(/sample\.interval: must be at least 100ms/);
    expect(() => parseConfig({ sampel: {} })).toThrow(/Unrecognized key\(s\) in object: 'sampel'/);
  });

  test('flags override the file and a bad flag names the flag', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jf-cfg-'));
    const file = join(dir, 'c.yml');
    writeFileSync(file, 'sample:\n  interval: 2s\ncooling:\n  mode: cop\n');
    const c = await resolveConfig({ 'config.file': file, 'sample.interval': '500ms' });
    expect(c.sample.interval).toBe(500);
    expect(c.cooling.mode).toBe('cop');
    await expect(resolveConfig({ 'sample.interval': 'fast' })).rejects.toThrow(
      /sample\.interval \(--sample\.interval\): invalid duration "fast"/,
    );
    writeFileSync(file, 'cooling: [1,\n');
    await expect(resolveConfig({ 'config.file': file })).rejects.toThrow(ConfigError);
    await expect(resolveConfig({ 'config.file': join(dir, 'missing.yml') })).rejects.toThrow(/cannot read config file/);
  });

  test('listen addresses', () => {
    expect(parseListenAddress(':10042')).toEqual({ host: undefined, port: 10042 });
    expect(parseListenAddress('127.0.0.1:9')).toEqual({ host: '127.0.0.1', port: 9 });
    expect(parseListenAddress('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListenAddress('nohost')).toThrow(/web.listenAddress/);
  });
});

describe('values that would break later are refused up front', () => {
  test.each([
    [{ cpu: { tdpWatts: Infinity } }, /cpu\.tdpWatts/],
    [{ sample: { interval: '30d' } }, /sample\.interval: must be a finite duration of at most 24d/],
    [{ sample: { interval: '1s', timeout: '10m' } }, /sample\.timeout: timeout must not exceed the interval/],
    [{ disks: { exclude: '(' } }, /disks\.exclude: invalid regular expression/],
    [{ nics: { include: '[' } }, /nics\.include: invalid regular expression/],
    [{ web: { telemetryPath: '/metrics(' } }, /web\.telemetryPath: must be a plain path/],
    [{ web: { telemetryPath: '/api/v1/jobs' } }, /web\.telemetryPath: must not shadow/],
    [{ web: { listenAddress: 'localhost' } }, /web\.listenAddress: expected host:port/],
    // A meter point whose unit does not fit its kind would fail every read.
    [
      {
        meters: [
          {
            name: 'crac',
            protocol: 'modbus',
            host: 'h',
            registers: [{ address: 1, type: 'uint16', kind: 'supply_air_temperature', unit: 'kW' }],
          },
        ],
      },
      /meters\.0\.registers\.0\.unit: unit kW does not fit kind supply_air_temperature \(.*supply_air_temperature: C\)/,
    ],
    [
      { meters: [{ name: 'pdu', protocol: 'snmp', host: 'h', points: [{ oid: '1.3.6.1.4.1.1', kind: 'energy', unit: 'W' }] }] },
      /meters\.0\.points\.0\.unit: unit W does not fit kind energy/,
    ],
    [
      { meters: [{ name: 'crac', protocol: 'snmp', host: 'h', points: [{ oid: '1.3.6.1.4.1.1', kind: 'power', unit: 'C' }] }] },
      /meters\.0\.points\.0\.unit: unit C does not fit kind power/,
    ],
  ])('%j', (input, message) => expect(() => parseConfig(input)).toThrow(message));

  test('units that fit their kinds are accepted, and an SNMP unitOid point takes its unit from the device', () => {
    const registers = [
      { address: 1, table: 'input', type: 'uint16', kind: 'power', unit: 'kW' },
      { address: 2, table: 'input', type: 'uint32', kind: 'energy', unit: 'kWh' },
      { address: 4, table: 'input', type: 'int16', kind: 'supply_air_temperature', unit: 'C' },
    ];
    const cooling = { share: 0.5 };
    expect(parseConfig({ cooling, meters: [{ name: 'crac', protocol: 'modbus', host: 'h', registers }] }).meters).toHaveLength(1);
    const points = [{ oid: '1.3.6.1.4.1.1', kind: 'power', unit: 'Wh', unitOid: '1.3.6.1.4.1.2' }];
    expect(parseConfig({ cooling, meters: [{ name: 'flex', protocol: 'snmp', host: 'h', points }] }).meters).toHaveLength(1);
  });
});
