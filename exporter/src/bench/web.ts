import { readFileSync } from 'fs';
import * as net from 'net';
import bcrypt from 'bcryptjs';
import { BasicAuth } from '../web/basic-auth';
import { peerUid } from '../web/peer-uid';
import { percentile, type BenchRow } from './table';

/** The web layer's own costs: who is calling (one read of /proc/net/tcp per API request), basic auth. */

const CONNECTIONS = 500;
const LOOKUPS = 200;

async function benchPeerUid(): Promise<BenchRow[]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  const clients = Array.from({ length: CONNECTIONS }, () => net.connect(port, '127.0.0.1').on('error', () => undefined));
  while (accepted.length < CONNECTIONS) await new Promise((r) => setTimeout(r, 10));
  const rows = readFileSync('/proc/net/tcp', 'utf8').split('\n').length - 2;
  const ms: number[] = [];
  for (let i = 0; i < LOOKUPS; i++) {
    const t = process.hrtime.bigint();
    const uid = await peerUid('/proc', accepted[(i * 7) % CONNECTIONS]);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (uid !== process.getuid?.()) throw new Error(`peerUid found ${uid}, expected this process's uid`);
  }
  clients.forEach((c) => c.destroy());
  accepted.forEach((s) => s.destroy());
  await new Promise((r) => server.close(r));
  ms.sort((a, b) => a - b);
  const note = `${rows} rows in /proc/net/tcp`;
  return [
    { area: 'web', metric: 'caller uid lookup p50', value: percentile(ms, 50), unit: 'ms', note },
    { area: 'web', metric: 'caller uid lookup p99', value: percentile(ms, 99), unit: 'ms', note },
  ];
}

async function benchBasicAuth(): Promise<BenchRow[]> {
  const auth = new BasicAuth(new Map([['prom', bcrypt.hashSync('secret', 10)]]));
  const header = `Basic ${Buffer.from('prom:secret').toString('base64')}`;
  let t = process.hrtime.bigint();
  if (!(await auth.check(header))) throw new Error('basic auth refused the right password');
  const first = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) await auth.check(header);
  const cached = Number(process.hrtime.bigint() - t) / 1e3 / 1000;
  return [
    { area: 'web', metric: 'basic auth, first check', value: first, unit: 'ms', note: 'bcrypt cost 10' },
    { area: 'web', metric: 'basic auth, cached check', value: cached, unit: 'µs', note: 'mean of 1000' },
  ];
}

export async function benchWeb(): Promise<BenchRow[]> {
  return [...(await benchPeerUid()), ...(await benchBasicAuth())];
}
