import { readFileSync } from 'fs';
import { ConfigError } from '../config';

/**
 * The jobs API bearer token, read in one place for both ends: the exporter (--web.jobs-token-file,
 * then the configured environment variable) and the CLI (`run`, `jobs`: --token-file, then
 * $JOULEFLOW_JOBS_TOKEN). A named file that cannot be read or is empty is a start-up error naming
 * the flag, never silently "no token": that would turn a protected exporter into a refusing one.
 */

export const TOKEN_ENV = 'JOULEFLOW_JOBS_TOKEN';

/** `flag` names the setting in error messages, e.g. "web.jobsTokenFile (--web.jobs-token-file)". */
export function readJobsToken(file: string | undefined, flag: string, env: string = TOKEN_ENV): string | undefined {
  if (file) {
    let t: string;
    try {
      t = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!t) throw new ConfigError(`${flag}: ${file} is empty`);
    return t;
  }
  return process.env[env]?.trim() || undefined;
}
