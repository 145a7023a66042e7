import * as fs from 'fs';
import * as https from 'https';
import * as http from 'http';

/** An HTTP(S) GET with a CA, client certificate and basic auth (global fetch takes no CA). */
export interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** SHA-256 fingerprint of the server's certificate (TLS only). */
  fingerprint?: string;
}

export function get(
  url: string,
  opts: {
    ca?: string;
    cert?: string;
    key?: string;
    user?: string;
    password?: string;
    headers?: Record<string, string>;
    method?: string;
  } = {},
): Promise<Got> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.user !== undefined) headers.authorization = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ''}`).toString('base64')}`;
  const tls = u.protocol === 'https:';
  const options: https.RequestOptions = {
    method: opts.method ?? 'GET',
    headers,
    agent: false,
    timeout: 10_000,
    ...(tls
      ? {
          ca: opts.ca ? fs.readFileSync(opts.ca) : undefined,
          cert: opts.cert ? fs.readFileSync(opts.cert) : undefined,
          key: opts.key ? fs.readFileSync(opts.key) : undefined,
        }
      : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (tls ? https : http).request(u, options, (res) => {
      const sock = res.socket as import('tls').TLSSocket;
      const fingerprint = tls && typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate().fingerprint256 : undefined;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, fingerprint });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
