import { promises as fsp } from 'fs';
import * as path from 'path';
import { createSecureContext, type SecureContextOptions, type SecureVersion } from 'tls';
import { parseYaml } from '../util/yaml';
import { z } from 'zod';
import { ConfigError } from '../config';

/**
 * `--web.config.file`: the Prometheus exporter-toolkit web configuration (the file node_exporter
 * reads): TLS, basic auth with bcrypt hashes, extra response headers. Validated completely at
 * start-up and on SIGHUP (certificates and keys loaded and paired), so a bad file names its field
 * instead of failing the first scrape. Relative file names are relative to the config file, as in
 * the toolkit.
 */

export const WEB_CONFIG_FLAG = '--web.config.file';

const TLS_VERSIONS: Record<string, SecureVersion> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };

/** Go's crypto/tls names (those tls.CipherSuites() lists for TLS ≤ 1.2) → OpenSSL's. */
const GO_CIPHERS: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};
/** TLS 1.3 suites: like Go, not configurable (always on when TLS 1.3 is allowed). */
const TLS13_SUITES = new Set(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);

const GO_CURVES: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** The headers the toolkit lets an operator add, with the values it accepts (undefined: any). */
const HEADERS: Record<string, RegExp | undefined> = {
  'Content-Security-Policy': undefined,
  'X-Frame-Options': /^(deny|sameorigin)$/i,
  'X-Content-Type-Options': /^nosniff$/i,
  'X-XSS-Protection': undefined,
  'Strict-Transport-Security': undefined,
};

const BCRYPT_HASH = /^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$/;

const TlsSchema = z
  .object({
    cert: z.string().optional(),
    key: z.string().optional(),
    client_ca: z.string().optional(),
    cert_file: z.string().optional(),
    key_file: z.string().optional(),
    client_auth_type: z.enum(CLIENT_AUTH_TYPES).default('NoClientCert'),
    client_ca_file: z.string().optional(),
    client_allowed_sans: z.array(z.string()).optional(),
    min_version: z.enum(['TLS10', 'TLS11', 'TLS12', 'TLS13']).default('TLS12'),
    max_version: z.enum(['TLS10', 'TLS11', 'TLS12', 'TLS13']).default('TLS13'),
    cipher_suites: z
      .array(
        z.string().refine(
          (c) => c in GO_CIPHERS || TLS13_SUITES.has(c),
          (c) => ({ message: `unknown or insecure cipher suite "${c}"` }),
        ),
      )
      .optional(),
    prefer_server_cipher_suites: z.boolean().default(true),
    curve_preferences: z
      .array(
        z.string().refine(
          (c) => c in GO_CURVES,
          (c) => ({ message: `unknown curve "${c}" (${Object.keys(GO_CURVES).join(', ')})` }),
        ),
      )
      .optional(),
  })
  .strict();

const WebConfigSchema = z
  .object({
    tls_server_config: TlsSchema.optional(),
    http_server_config: z
      .object({
        /** Accepted for compatibility; jouleflow serves HTTP/1.1 (Prometheus scrapes it either way). */
        http2: z.boolean().optional(),
        headers: z
          .record(z.string())
          .superRefine((h, ctx) => {
            for (const [k, v] of Object.entries(h)) {
              if (!(k in HEADERS))
                ctx.addIssue({ code: 'custom', path: [k], message: `header not allowed (${Object.keys(HEADERS).join(', ')})` });
              else if (HEADERS[k] && v !== '' && !HEADERS[k]!.test(v))
                ctx.addIssue({ code: 'custom', path: [k], message: `invalid value "${v}"` });
            }
          })
          .optional(),
      })
      .strict()
      .optional(),
    basic_auth_users: z
      .record(z.string().regex(BCRYPT_HASH, 'must be a bcrypt hash ($2y$10$…, e.g. from htpasswd -nBC 10 "")'))
      .nullable()
      .optional(),
  })
  .strict();

export interface TlsSettings {
  /** Options for https.createServer / server.setSecureContext. */
  secure: SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean };
  clientAuth: ClientAuthType;
  allowedSans?: string[];
}

export interface WebConfig {
  file: string;
  tls?: TlsSettings;
  users: Map<string, string>;
  headers: Record<string, string>;
}

function fail(file: string, field: string, message: string): never {
  throw new ConfigError(`invalid web configuration in ${file}:\n  ${field} (${WEB_CONFIG_FLAG}): ${message}`);
}

async function pem(file: string, dir: string, field: string, inline?: string, name?: string): Promise<string | undefined> {
  if (inline !== undefined && name !== undefined) fail(file, field, `give either ${field.replace(/_file$/, '')} or ${field}, not both`);
  if (inline !== undefined) return inline;
  if (name === undefined) return undefined;
  try {
    return await fsp.readFile(path.resolve(dir, name), 'utf8');
  } catch (err) {
    return fail(file, `tls_server_config.${field}`, `cannot read ${name}: ${(err as Error).message}`);
  }
}

/** Reads and validates the file; throws ConfigError naming the field and the flag. */
export async function loadWebConfig(file: string): Promise<WebConfig> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read web configuration ${file} (${WEB_CONFIG_FLAG}): ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = (await parseYaml(text)) ?? {};
  } catch (err) {
    throw new ConfigError(`web configuration ${file} (${WEB_CONFIG_FLAG}) is not valid YAML: ${(err as Error).message}`);
  }
  const parsed = WebConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'} (${WEB_CONFIG_FLAG}): ${i.message}`);
    throw new ConfigError(`invalid web configuration in ${file}:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  const dir = path.dirname(path.resolve(file));
  const tls = c.tls_server_config ? await tlsSettings(file, dir, c.tls_server_config) : undefined;
  const headers = Object.fromEntries(Object.entries(c.http_server_config?.headers ?? {}).filter(([, v]) => v !== ''));
  if (headers['Strict-Transport-Security'] && !tls)
    fail(file, 'http_server_config.headers.Strict-Transport-Security', 'needs tls_server_config');
  return { file, tls, users: new Map(Object.entries(c.basic_auth_users ?? {})), headers };
}

async function tlsSettings(file: string, dir: string, t: z.output<typeof TlsSchema>): Promise<TlsSettings> {
  const cert = await pem(file, dir, 'cert_file', t.cert, t.cert_file);
  const key = await pem(file, dir, 'key_file', t.key, t.key_file);
  const ca = await pem(file, dir, 'client_ca_file', t.client_ca, t.client_ca_file);
  if (cert === undefined) fail(file, 'tls_server_config.cert_file', 'required with tls_server_config');
  if (key === undefined) fail(file, 'tls_server_config.key_file', 'required with tls_server_config');
  const verifies = t.client_auth_type === 'VerifyClientCertIfGiven' || t.client_auth_type === 'RequireAndVerifyClientCert';
  if (verifies && ca === undefined) fail(file, 'tls_server_config.client_ca_file', `required with client_auth_type ${t.client_auth_type}`);
  if (!verifies && t.client_auth_type !== 'NoClientCert' && ca !== undefined) {
    // The toolkit refuses this too: a CA that is never used to verify gives a false sense of security.
    fail(
      file,
      'tls_server_config.client_auth_type',
      `client_ca_file is given but ${t.client_auth_type} does not verify client certificates`,
    );
  }
  if (t.client_allowed_sans && t.client_auth_type !== 'RequireAnyClientCert' && t.client_auth_type !== 'RequireAndVerifyClientCert') {
    fail(file, 'tls_server_config.client_allowed_sans', 'needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert');
  }
  const minVersion = TLS_VERSIONS[t.min_version];
  const maxVersion = TLS_VERSIONS[t.max_version];
  if (t.min_version > t.max_version) fail(file, 'tls_server_config.min_version', `${t.min_version} is above max_version ${t.max_version}`);
  const tls12 = (t.cipher_suites ?? []).filter((c) => c in GO_CIPHERS).map((c) => GO_CIPHERS[c]);
  if (t.cipher_suites && tls12.length === 0 && t.min_version !== 'TLS13') {
    fail(file, 'tls_server_config.cipher_suites', 'names no TLS 1.2 suite, so TLS 1.2 clients could not connect (set min_version: TLS13)');
  }
  const secure: TlsSettings['secure'] = {
    cert,
    key,
    ca,
    minVersion,
    maxVersion,
    honorCipherOrder: t.prefer_server_cipher_suites,
    // requestCert asks for a certificate; rejectUnauthorized makes OpenSSL refuse an unverified one.
    requestCert: t.client_auth_type !== 'NoClientCert',
    rejectUnauthorized: t.client_auth_type === 'RequireAndVerifyClientCert',
  };
  if (tls12.length) secure.ciphers = tls12.join(':');
  if (t.curve_preferences?.length) secure.ecdhCurve = t.curve_preferences.map((c) => GO_CURVES[c]).join(':');
  try {
    createSecureContext(secure); // a key that does not match its certificate, a bad PEM, an unknown cipher
  } catch (err) {
    fail(file, 'tls_server_config', `the certificate, key or CA cannot be used: ${(err as Error).message}`);
  }
  return { secure, clientAuth: t.client_auth_type, allowedSans: t.client_allowed_sans };
}
