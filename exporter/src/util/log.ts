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

function logfmtValue(v: string): string {
  return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
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
      write(JSON.stringify(all));
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
