export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'logfmt' | 'json';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/**
 * Characters that must never reach a log line raw: C0 controls (NUL, ESC, newlines), DEL, C1
 * controls (U+0085 NEL is a line break to many readers) and the Unicode line/paragraph separators.
 * JSON.stringify escapes only the C0 ones.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A logfmt value: bare when it is one plain word, else a JSON string with every unsafe character escaped. */
export function logfmtValue(v: string): string {
  // eslint-disable-next-line no-control-regex -- as above
  return /^[^\s"=\u0000-\u001f\u007f-\u009f\u2028\u2029]+$/.test(v) ? v : escapeUnsafe(JSON.stringify(v));
}

/** A small logfmt/json logger writing to stderr, in the style of Prometheus exporters (go-kit log). */
export function createLogger(
  level: LogLevel = 'info',
  format: LogFormat = 'logfmt',
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  base: LogFields = {},
): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(lvl) < min) return;
    const all: LogFields = { ts: new Date().toISOString(), level: lvl, msg, ...base, ...fields };
    if (format === 'json') {
      write(escapeUnsafe(JSON.stringify(all)));
      return;
    }
    const parts: string[] = [];
    for (const [k, v] of Object.entries(all)) {
      if (v === undefined || v === null) continue;
      parts.push(`${k}=${logfmtValue(String(v))}`);
    }
    write(parts.join(' '));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(level, format, write, { ...base, ...f }),
  };
}

export const silentLogger: Logger = createLogger('error', 'logfmt', () => undefined);
