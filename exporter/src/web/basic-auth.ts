import { createHash } from 'crypto';

/**
 * HTTP Basic authentication against bcrypt hashes (exporter-toolkit's `basic_auth_users`).
 * bcrypt costs tens of milliseconds by design, so, like the toolkit, each (user, password, hash)
 * outcome is cached (keyed by a SHA-256 of the three, never the password itself) and a Prometheus
 * scraping every 15 s pays once. Unknown users are checked against a dummy hash so that the
 * response time does not tell which user names exist.
 */

const DUMMY_HASH = '$2b$10$9TzqvZ2XrT/7kmsRW1jlQeBWm7uNdTbftC98XXuDbHYEbWLF1xMMq';
const CACHE_MAX = 1024;

export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { user: text.slice(0, i), password: text.slice(i + 1) };
}

export class BasicAuth {
  private readonly cache = new Map<string, boolean>();

  constructor(private readonly users: ReadonlyMap<string, string>) {}

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** Whether the Authorization header holds a known user with the right password. */
  async check(header: string | undefined): Promise<boolean> {
    const creds = parseBasicAuth(header);
    if (!creds) return false;
    const hash = this.users.get(creds.user);
    const key = createHash('sha256')
      .update(`${creds.user}\0${creds.password}\0${hash ?? ''}`)
      .digest('base64');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    // Loaded on first use: `jouleflow run` and servers without users never pay for it.
    const bcrypt = await import('bcryptjs');
    // bcryptjs understands $2a$/$2b$; htpasswd writes $2y$, the same algorithm.
    const ok = (await bcrypt.compare(creds.password, (hash ?? DUMMY_HASH).replace(/^\$2y\$/, '$2b$'))) && hash !== undefined;
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, ok);
    return ok;
  }
}
