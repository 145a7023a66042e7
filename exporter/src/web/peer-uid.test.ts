import { spawn } from 'child_process';
import * as net from 'net';
import { asUser, ensureTestUser } from '../../../test/helpers/test-user';
import { canonicalAddress, decodeProcAddress, encodeProcAddress, parseProcNetTcp, peerUid } from './peer-uid';

/** The kernel's socket table names the uid at the other end of a connection (real sockets, real /proc). */

describe('/proc/net/tcp parsing', () => {
  it('decodes addresses as the kernel prints them (little-endian words)', () => {
    expect(decodeProcAddress('0100007F')).toBe('127.0.0.1');
    expect(decodeProcAddress('0200007F')).toBe('127.0.0.2');
    expect(decodeProcAddress('00000000000000000000000001000000')).toBe('0:0:0:0:0:0:0:1');
    expect(decodeProcAddress('0000000000000000FFFF00000100007F')).toBe('127.0.0.1');
    expect(decodeProcAddress('000080FE00000000FF005452FE123456')).toBe('fe80:0:0:0:5254:ff:5634:12fe');
  });

  it('canonicalises Node’s address forms', () => {
    expect(canonicalAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(canonicalAddress('::1')).toBe('0:0:0:0:0:0:0:1');
    expect(canonicalAddress('::FFFF:7f00:1')).toBe('127.0.0.1');
    expect(canonicalAddress('fe80::1%eth0')).toBe('fe80:0:0:0:0:0:0:1');
    expect(canonicalAddress('10.1.2.3')).toBe('10.1.2.3');
  });

  it('reads the uid and inode columns', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:2742 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000  1001        0 4242 1 0000 20 4 30 10 -1',
      '   1: 0100007F:A2C4 0100007F:2742 06 00000000:00000000 03:00000D4A 00000000     0        0 0 3 0000',
    ].join('\n');
    expect(parseProcNetTcp(text)).toEqual([
      { local: '127.0.0.1', localPort: 10050, remote: '127.0.0.1', remotePort: 41668, uid: 1001, inode: 4242 },
      { local: '127.0.0.1', localPort: 41668, remote: '127.0.0.1', remotePort: 10050, uid: 0, inode: 0 },
    ]);
  });
});

/** Accepts one connection on `host` and returns the uid peerUid finds for it. */
async function uidOfConnection(host: string, connect: (port: number) => () => void): Promise<number | undefined> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const close = connect(port);
  const sock = await accepted;
  try {
    return await peerUid('/proc', sock);
  } finally {
    sock.destroy();
    close();
    await new Promise((r) => server.close(r));
  }
}

function connectFromHere(connectHost: string) {
  return (port: number) => {
    const c = net.connect(port, connectHost);
    c.on('error', () => undefined);
    return () => c.destroy();
  };
}

describe('peerUid with real connections', () => {
  it('names this process’s uid for a connection over 127.0.0.1', async () => {
    expect(await uidOfConnection('127.0.0.1', connectFromHere('127.0.0.1'))).toBe(process.getuid!());
  });

  it('over ::1 and IPv4 into a dual-stack listener (::ffff:127.0.0.1)', async () => {
    expect(await uidOfConnection('::1', connectFromHere('::1'))).toBe(process.getuid!());
    expect(await uidOfConnection('::', connectFromHere('127.0.0.1'))).toBe(process.getuid!());
  });

  it('names another user’s uid when that user connects', async () => {
    const user = ensureTestUser();
    if ('skip' in user) {
      console.warn(`skipped: ${user.skip}`);
      return;
    }
    const uid = await uidOfConnection('127.0.0.1', (port) => {
      const [cmd, ...args] = asUser(user.name, [
        process.execPath,
        '-e',
        `require('net').connect(${port}, '127.0.0.1'); setTimeout(() => {}, 60000)`,
      ]);
      const child = spawn(cmd, args, { stdio: 'ignore' });
      return () => child.kill('SIGKILL');
    });
    expect(uid).toBe(user.uid);
    expect(uid).not.toBe(process.getuid!());
  });

  it('finds nobody for a connection the table does not list (another host)', async () => {
    expect(
      await peerUid('/nonexistent', { localAddress: '127.0.0.1', localPort: 1, remoteAddress: '127.0.0.1', remotePort: 2 }),
    ).toBeUndefined();
  });
});

describe('encodeProcAddress', () => {
  it('is the inverse of decodeProcAddress', () => {
    for (const hex of ['0100007F', '0200007F', '0A01A8C0']) expect(encodeProcAddress(decodeProcAddress(hex), false)).toBe(hex);
    for (const hex of ['00000000000000000000000001000000', '0000000000000000FFFF00000100007F', '000080FE00000000FF005452FE123456'])
      expect(encodeProcAddress(decodeProcAddress(hex), true)).toBe(hex);
    expect(encodeProcAddress('0:0:0:0:0:0:0:1', false)).toBeUndefined();
  });
});
