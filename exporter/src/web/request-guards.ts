import { hostname } from 'os';
import type { NextFunction, Request, Response } from 'express';
import { isLoopbackAddress } from './loopback';
import { canonicalAddress } from './peer-uid';

/**
 * Guards in front of every route (issue 10 §3):
 *   - a method a path does not serve → 405 with `Allow` (not a 404 that hides the endpoint);
 *   - a mutation with a body that is not JSON → 415: a browser may send text/plain, form or
 *     multipart bodies cross-origin without a CORS preflight, JSON it may not;
 *   - a request from a web page of another origin (`Origin` not naming this listener) → 403: the
 *     uid check would otherwise let any page open in a local user's browser act as that user.
 */

export interface Route {
  /** Matches the request path. */
  path: RegExp;
  methods: readonly string[];
}

/** The exporter's routes and the methods each serves; HEAD rides on GET. */
export function exporterRoutes(telemetryPath: string): Route[] {
  const esc = telemetryPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [
    { path: new RegExp(`^${esc}$`), methods: ['GET'] },
    { path: /^\/$/, methods: ['GET'] },
    { path: /^\/healthz$/, methods: ['GET'] },
    { path: /^\/api\/v1\/jobs$/, methods: ['GET', 'POST'] },
    { path: /^\/api\/v1\/jobs\/[^/]+$/, methods: ['GET'] },
    { path: /^\/api\/v1\/jobs\/[^/]+\/end$/, methods: ['POST'] },
  ];
}

function allowed(methods: readonly string[]): string[] {
  return methods.includes('GET') ? [...methods, 'HEAD'] : [...methods];
}

export function methodGuard(routes: readonly Route[]) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const route = routes.find((r) => r.path.test(req.path));
    if (!route) return next(); // unknown paths: the 404 of whoever serves that prefix
    const ok = allowed(route.methods);
    if (ok.includes(req.method)) return next();
    res.status(405).setHeader('Allow', ok.join(', '));
    res.json({ error: `method ${req.method} not allowed on ${req.path} (allowed: ${ok.join(', ')})` });
  };
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Whether a request carries a body (a POST with none, like `…/end`, needs no content type). */
function hasBody(req: Request): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export function jsonOnlyGuard(req: Request, res: Response, next: NextFunction): void {
  if (!MUTATING.has(req.method) || !hasBody(req)) return next();
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type)) return next();
  res.status(415).json({ error: `request body must be application/json, got ${type ? JSON.stringify(type) : 'no Content-Type'}` });
}

/**
 * Whether `origin` (a browser's Origin header) names this listener: same scheme and port, and a
 * host that is this host's own (loopback, `localhost`, the bound address, the host name). Not
 * compared with the Host header, which a DNS-rebinding page controls as much as its Origin.
 */
export function originMatches(origin: string, listener: { tls: boolean; port: number; localAddress?: string }): boolean {
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file://) and garbage
  }
  if (u.protocol !== (listener.tls ? 'https:' : 'http:')) return false;
  const port = u.port === '' ? (listener.tls ? 443 : 80) : Number(u.port);
  if (port !== listener.port) return false;
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const me = hostname().toLowerCase();
  if (host === 'localhost' || host === me) return true;
  if (isLoopbackAddress(host)) return true;
  return (
    listener.localAddress !== undefined && /^[\d.:a-f]+$/.test(host) && canonicalAddress(host) === canonicalAddress(listener.localAddress)
  );
}

export function originGuard(tls: boolean) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin;
    if (origin === undefined) return next();
    const listener = { tls, port: req.socket.localPort ?? 0, localAddress: req.socket.localAddress };
    if (originMatches(origin, listener)) return next();
    res.status(403).json({ error: `cross-origin request refused: Origin ${JSON.stringify(origin)} is not this exporter` });
  };
}
