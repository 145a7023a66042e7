import { existsSync, readFileSync } from 'fs';
import http, { type IncomingMessage, type ServerResponse } from 'http';
import https from 'https';
import { randomUUID } from 'crypto';
import { join, resolve } from 'path';

/**
 * A small Redfish service for the tests: serves the DMTF mockups copied into
 * test/fixtures/redfish/<mockup> (/redfish/v1/<path> → <mockup>/<path>/index.json), with basic
 * auth and sessions, 405 for other writes, and energy readings that grow with time
 * (EnergykWh.Reading, and Reading/LifetimeReading of EnergykWh sensors: base + rate × elapsed s).
 * Every energy value served is logged with its path, so tests compute expected energy from it.
 */

export interface RedfishServerOptions {
  mockup: string;
  username: string;
  password: string;
  /** kWh per second added to every energy reading. */
  kwhPerSecond: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
  /** Changes to documents (path without trailing slash → edit). */
  overlay?: Record<string, (doc: Record<string, unknown>) => Record<string, unknown>>;
}

export const FIXTURES = resolve(__dirname, '../fixtures/redfish');

export class RedfishServer {
  port = 0;
  private server: http.Server | https.Server | undefined;
  private readonly t0 = Date.now();
  private readonly sessions = new Set<string>();
  readonly served: Array<{ path: string; value: number }> = [];
  requests = 0;

  constructor(private readonly opts: RedfishServerOptions) {}

  async start(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const server = this.opts.tls ? https.createServer(this.opts.tls, handler) : http.createServer(handler);
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(this.port, '127.0.0.1', () => ok());
    });
    const a = server.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((ok) => {
      s.close(() => ok());
      s.closeAllConnections();
    });
  }

  /** Reads a fixture document as served before increments (for expected static values). */
  fixture(path: string): Record<string, unknown> {
    return JSON.parse(readFileSync(join(FIXTURES, this.opts.mockup, path.replace(/^\/redfish\/v1\/?/, ''), 'index.json'), 'utf8'));
  }

  servedAt(path: string): number[] {
    return this.served.filter((s) => s.path === path).map((s) => s.value);
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'OData-Version': '4.0', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  }

  private authorised(req: IncomingMessage): boolean {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string' && this.sessions.has(token)) return true;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, ...p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      return u === this.opts.username && p.join(':') === this.opts.password;
    }
    return false;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path === '/redfish') return this.send(res, 200, { v1: '/redfish/v1/' });
    if (req.method === 'POST' && path === '/redfish/v1/SessionService/Sessions') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        let creds: { UserName?: string; Password?: string } = {};
        try {
          creds = JSON.parse(body) as typeof creds;
        } catch {
          return this.send(res, 400, { error: 'bad JSON' });
        }
        if (creds.UserName !== this.opts.username || creds.Password !== this.opts.password) return this.send(res, 401, { error: 'login' });
        const token = randomUUID();
        this.sessions.add(token);
        this.send(res, 201, { Id: token }, { 'X-Auth-Token': token, Location: `/redfish/v1/SessionService/Sessions/${token}` });
      });
      return;
    }
    if (req.method === 'DELETE' && path.startsWith('/redfish/v1/SessionService/Sessions/')) {
      this.sessions.delete(path.split('/').pop() ?? '');
      return this.send(res, 204, undefined);
    }
    if (req.method !== 'GET') return this.send(res, 405, { error: 'read-only' });
    if (path !== '/redfish/v1' && !this.authorised(req))
      return this.send(res, 401, { error: 'unauthorised' }, { 'WWW-Authenticate': 'Basic realm="redfish"' });
    const file = join(FIXTURES, this.opts.mockup, path.replace(/^\/redfish\/v1\/?/, ''), 'index.json');
    if (!path.startsWith('/redfish/v1') || !existsSync(file)) return this.send(res, 404, { error: 'not found' });
    let doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const edit = this.opts.overlay?.[path];
    if (edit) doc = edit(doc);
    const grow = (base: number) => base + this.opts.kwhPerSecond * ((Date.now() - this.t0) / 1000);
    const energy = doc.EnergykWh as { Reading?: number } | undefined;
    if (energy && typeof energy.Reading === 'number') {
      energy.Reading = grow(energy.Reading);
      this.served.push({ path, value: energy.Reading });
    }
    if (doc.ReadingType === 'EnergykWh') {
      for (const f of ['Reading', 'LifetimeReading']) {
        if (typeof doc[f] === 'number') {
          doc[f] = grow(doc[f] as number);
          this.served.push({ path: `${path}#${f}`, value: doc[f] as number });
        }
      }
    }
    this.send(res, 200, doc);
  }
}
