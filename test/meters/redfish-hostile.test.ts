import http from 'http';
import type { AddressInfo } from 'net';
import { parseConfig } from '../../exporter/src/config';
import { MAX_REDFISH_BODY_BYTES, RedfishMeterSource } from '../../exporter/src/sources/meters/redfish';
import { redactSecrets } from '../../exporter/src/sources/meters/common';
import { silentLogger } from '../../exporter/src/util/log';

/**
 * Issue 10 §5: a hostile or broken BMC. Real HTTP servers on loopback play the BMC: one whose
 * Chassis link points at another port (which records what it is sent), one that streams an
 * endless body. Plus start-up validation of the URL scheme and the secret redaction rules.
 */

interface Peer {
  server: http.Server;
  port: number;
  requests: Array<{ url: string; authorization?: string }>;
  bytesSent: number;
}

async function peer(handler: (req: http.IncomingMessage, res: http.ServerResponse, p: Peer) => void): Promise<Peer> {
  const p: Peer = { server: http.createServer(), port: 0, requests: [], bytesSent: 0 };
  p.server.on('request', (req, res) => {
    p.requests.push({ url: req.url ?? '', authorization: req.headers.authorization });
    handler(req, res, p);
  });
  await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
  p.port = (p.server.address() as AddressInfo).port;
  return p;
}

const peers: Peer[] = [];
afterEach(async () => {
  for (const p of peers.splice(0)) {
    p.server.closeAllConnections();
    await new Promise((r) => p.server.close(r));
  }
});

function source(port: number): RedfishMeterSource {
  const cfg = parseConfig({
    cooling: { share: 1 },
    meters: [
      { name: 'bmc', protocol: 'redfish', url: `http://127.0.0.1:${port}`, username: 'u', password: 'sekrit-pass', minInterval: '1ms' },
    ],
  }).meters[0];
  return new RedfishMeterSource(cfg as never, 5000, silentLogger);
}

const json = (res: http.ServerResponse, body: unknown) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
};

test('an @odata.id link to another origin is not followed and gets no credentials', async () => {
  const other = await peer((_req, res) => json(res, { PowerWatts: { Reading: 1 } }));
  const bmc = await peer((req, res) => {
    if (req.url === '/redfish/v1/Chassis')
      return json(res, { Members: [{ '@odata.id': `http://127.0.0.1:${other.port}/redfish/v1/Chassis/1` }] });
    res.statusCode = 404;
    res.end();
  });
  peers.push(other, bmc);
  const src = source(bmc.port);
  await src.init();
  await expect(src.sample({ now: 0, signal: new AbortController().signal })).rejects.toThrow(/leaves the configured service/);
  expect(other.requests).toEqual([]);
  expect(bmc.requests.every((r) => r.authorization?.startsWith('Basic '))).toBe(true);
  await src.close();
});

test('an endless answer is cut off at the size cap, not buffered', async () => {
  const chunk = Buffer.alloc(1 << 20, 0x20);
  const bmc = await peer((_req, res, p) => {
    res.setHeader('content-type', 'application/json');
    res.write('{"Members": [');
    const more = () => {
      // Up to 64 MiB unless the client goes away first.
      while (p.bytesSent < 64 * chunk.length && !res.destroyed) {
        p.bytesSent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      if (!res.destroyed) res.end(']}');
    };
    res.on('close', () => undefined);
    more();
  });
  peers.push(bmc);
  const src = source(bmc.port);
  await src.init();
  await expect(src.sample({ now: 0, signal: new AbortController().signal })).rejects.toThrow(
    new RegExp(`answer larger than ${MAX_REDFISH_BODY_BYTES} bytes`),
  );
  expect(bmc.bytesSent).toBeLessThan(64 * chunk.length);
  await src.close();
});

test('meter URLs: only http and https, rejected at start-up naming the field', () => {
  const cfg = (url: string) => () => parseConfig({ cooling: { share: 1 }, meters: [{ name: 'm', protocol: 'redfish', url }] });
  expect(cfg('ftp://bmc.example/')).toThrow(/meters\.0\.url.*http:\/\/ or https:\/\//s);
  expect(cfg('file:///etc/passwd')).toThrow(/http:\/\/ or https:\/\//);
  expect(cfg('https://bmc.example')).not.toThrow();
});

describe('secret redaction (issue 10 §5)', () => {
  test('exact values only: a one-letter or short secret never mangles the message', () => {
    const msg = 'meter "crac-1" (redfish): GET /redfish/v1: HTTP 401';
    expect(redactSecrets(msg, ['e'])).toBe(msg);
    expect(redactSecrets(msg, ['red'])).toBe(msg);
  });

  test('a secret standing as a value is masked; inside a longer word it is not', () => {
    expect(redactSecrets('login as admin:hunter22@bmc failed', ['hunter22'])).toBe('login as admin:***@bmc failed');
    expect(redactSecrets('community "public-ro" refused', ['public-ro'])).toBe('community "***" refused');
    expect(redactSecrets('xhunter22 is not the secret', ['hunter22'])).toBe('xhunter22 is not the secret');
    // Longest first: a secret containing another is masked whole.
    expect(redactSecrets('pw=abcd-efgh', ['abcd', 'abcd-efgh'])).toBe('pw=***');
    // Regular-expression characters in a secret are literal.
    expect(redactSecrets('pw=a.b*c+d', ['a.b*c+d'])).toBe('pw=***');
  });
});
