import * as http from 'http';
import * as https from 'https';
import type { TLSSocket } from 'tls';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from '../util/log';
import { BasicAuth } from './basic-auth';
import { loadWebConfig, type WebConfig } from './web-config';

/**
 * The HTTP(S) front of the exporter: creates the server that `--web.config.file` asks for (TLS
 * with client certificates, or plain HTTP), applies the slow-client limits, and guards every
 * request (/metrics, the API, the landing page) with basic auth and the configured headers.
 * SIGHUP reloads the file: certificates, users and headers change without a restart; a file that
 * no longer validates is logged and the running configuration kept.
 */

export interface ServerLimits {
  /** Time to receive a request's headers (slowloris): --web.header-timeout. */
  headersTimeoutMs: number;
  /** Time to receive a whole request: --web.request-timeout. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open: --web.keep-alive-timeout. */
  keepAliveTimeoutMs: number;
  /** Most open connections; more are closed at once: --web.max-connections. */
  maxConnections: number;
}

/** Lets a request through without basic auth (the jobs API's kernel-identified local callers and token holders). */
export type AuthExemption = (req: Request) => Promise<boolean>;

export class WebFront {
  private auth: BasicAuth;
  /** Set by whoever knows other credentials (the jobs API). */
  exempt: AuthExemption | undefined;
  private server: http.Server | undefined;

  private constructor(
    private config: WebConfig | undefined,
    private readonly limits: ServerLimits,
    private readonly log: Logger,
  ) {
    this.auth = new BasicAuth(config?.users ?? new Map());
  }

  /** Loads and validates `--web.config.file` (none: plain HTTP, no auth). Throws ConfigError. */
  static async create(file: string | undefined, limits: ServerLimits, log: Logger): Promise<WebFront> {
    return new WebFront(file ? await loadWebConfig(file) : undefined, limits, log);
  }

  get tls(): boolean {
    return this.config?.tls !== undefined;
  }

  get scheme(): 'http' | 'https' {
    return this.tls ? 'https' : 'http';
  }

  /** Mounted first: headers on every response, then basic auth where configured. */
  readonly guard: RequestHandler = (req: Request, res: Response, next: NextFunction) => {
    for (const [k, v] of Object.entries(this.config?.headers ?? {})) res.setHeader(k, v);
    if (!this.auth.enabled) return next();
    const auth = this.auth;
    void (async () => {
      if (await auth.check(req.headers.authorization)) return next();
      if (this.exempt && (await this.exempt(req))) return next();
      res.status(401).setHeader('WWW-Authenticate', 'Basic realm="jouleflow"');
      res.type('text/plain').send('Unauthorized\n');
    })().catch(next);
  };

  /** Creates the server for `handler` with the TLS settings and limits. */
  createServer(handler: http.RequestListener): http.Server {
    const opts: http.ServerOptions = {
      requestTimeout: this.limits.requestTimeoutMs,
      headersTimeout: this.limits.headersTimeoutMs,
      keepAliveTimeout: this.limits.keepAliveTimeoutMs,
      // How often Node checks the two timeouts above (default 30 s would let a slow client stay that long).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(this.limits.headersTimeoutMs / 2))),
    };
    const tls = this.config?.tls;
    const server = tls
      ? https.createServer({ ...opts, ...tls.secure, handshakeTimeout: this.limits.headersTimeoutMs }, handler)
      : http.createServer(opts, handler);
    server.maxConnections = this.limits.maxConnections;
    if (tls) server.on('secureConnection', (socket: TLSSocket) => this.checkClientCert(socket));
    this.server = server;
    return server;
  }

  /**
   * What OpenSSL does not enforce by itself: RequireAnyClientCert (a certificate, verified or
   * not), VerifyClientCertIfGiven (verified when present), client_allowed_sans.
   */
  private checkClientCert(socket: TLSSocket): void {
    const tls = this.config?.tls;
    if (!tls || tls.clientAuth === 'NoClientCert' || tls.clientAuth === 'RequestClientCert') return;
    const cert = socket.getPeerCertificate();
    const present = cert !== null && Object.keys(cert).length > 0;
    let why: string | undefined;
    if (!present && tls.clientAuth !== 'VerifyClientCertIfGiven') why = 'no client certificate';
    else if (present && tls.clientAuth !== 'RequireAnyClientCert' && !socket.authorized)
      why = `client certificate not verified: ${String(socket.authorizationError)}`;
    else if (tls.allowedSans) {
      const sans = (cert.subjectaltname ?? '').split(/,\s*/).map((s) => s.slice(s.indexOf(':') + 1));
      if (!tls.allowedSans.some((a) => sans.includes(a)))
        why = `client certificate SANs (${cert.subjectaltname ?? 'none'}) not in client_allowed_sans`;
    }
    if (why) {
      this.log.warn('TLS client refused', { reason: why, remote: socket.remoteAddress });
      socket.destroy();
    }
  }

  /** Re-reads the file (SIGHUP). Resolves false, keeping the running configuration, when it no longer validates. */
  async reload(): Promise<boolean> {
    const file = this.config?.file;
    if (!file) return true;
    let next: WebConfig;
    try {
      next = await loadWebConfig(file);
    } catch (err) {
      this.log.error('web configuration not reloaded: keeping the running one', { err: (err as Error).message });
      return false;
    }
    if ((next.tls === undefined) !== (this.config?.tls === undefined)) {
      this.log.error('web configuration not reloaded: switching between HTTP and HTTPS needs a restart', { file });
      return false;
    }
    if (next.tls && this.server instanceof https.Server) {
      this.server.setSecureContext(next.tls.secure);
      // Read by Node on every new connection.
      const s = this.server as https.Server & { requestCert: boolean; rejectUnauthorized: boolean };
      s.requestCert = next.tls.secure.requestCert;
      s.rejectUnauthorized = next.tls.secure.rejectUnauthorized;
    }
    this.config = next;
    this.auth = new BasicAuth(next.users);
    this.log.info('web configuration reloaded', { file, tls: next.tls !== undefined, users: next.users.size });
    return true;
  }
}
