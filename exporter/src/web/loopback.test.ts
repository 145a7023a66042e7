import * as net from 'net';
import { isLoopbackHost } from '../config';
import { boundToLoopback, isLoopbackAddress } from './loopback';
import { originMatches } from './request-guards';

describe('loopback is judged on addresses, not on text', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.0.0.2', true],
    ['127.255.255.254', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:2', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['127.evil.example', false],
    ['1270.0.0.1', false],
    ['localhost.evil.example', false],
  ])('%s → %s', (addr, loop) => {
    expect(isLoopbackAddress(addr)).toBe(loop);
  });

  it('a configured host: address literals as addresses, "localhost" on trust, other names never', () => {
    expect(isLoopbackHost('127.0.0.2')).toBe(true);
    expect(isLoopbackHost('::ffff:127.0.0.1')).toBe(true);
    expect(isLoopbackHost('LOCALHOST')).toBe(true);
    expect(isLoopbackHost('127.example.com')).toBe(false);
    expect(isLoopbackHost(undefined)).toBe(false);
  });

  it('a listening server: the address it is bound to ("localhost" resolved by listen)', async () => {
    for (const [host, loop] of [
      ['localhost', true],
      ['127.0.0.1', true],
    ] as const) {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, host, r));
      expect([host, boundToLoopback(s)]).toEqual([host, loop]);
      await new Promise((r) => s.close(r));
    }
  });
});

describe('Origin names this listener', () => {
  const l = { tls: false, port: 10042, localAddress: '10.1.2.3' };
  it.each([
    ['http://127.0.0.1:10042', true],
    ['http://localhost:10042', true],
    ['http://[::1]:10042', true],
    ['http://10.1.2.3:10042', true],
    ['https://127.0.0.1:10042', false],
    ['http://127.0.0.1:3000', false],
    ['http://evil.example:10042', false],
    ['http://10.1.2.4:10042', false],
    ['null', false],
    ['', false],
  ])('%s → %s', (origin, ok) => {
    expect(originMatches(origin, l)).toBe(ok);
  });
  it('default ports by scheme', () => {
    expect(originMatches('https://localhost', { tls: true, port: 443 })).toBe(true);
    expect(originMatches('http://localhost', { tls: false, port: 80 })).toBe(true);
  });
});
