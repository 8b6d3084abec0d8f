import type { Logger } from '@pyml/contract';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

const jsonValue = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

/** `key=value` for a text line: bare when it is a plain word or number, JSON-quoted otherwise. */
function textField(key: string, value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value, jsonValue);
  return `${key}=${typeof value === 'string' && !/^[\w./:@+-]+$/.test(value) ? JSON.stringify(value) : text}`;
}

/**
 * Logger on stderr: stdout belongs to the protocol (the ready line, predictions, Arrow IPC). PYML_LOG_FORMAT picks
 * JSON lines (default: a supervisor parses one object per line) or text (`TIME LEVEL msg key=value ...`, for
 * people); PYML_LOG_LEVEL picks the threshold (default info). Both are environment variables so that a model
 * process started by `pyml serve` logs as its parent does.
 */
export function createLogger(fields: Record<string, unknown> = {}, level: string = process.env.PYML_LOG_LEVEL ?? 'info', format: string = process.env.PYML_LOG_FORMAT ?? 'json'): Logger {
  const threshold = LEVELS[level as Level] ?? LEVELS.info;
  const text = format === 'text';
  const emit = (lvl: Level, message: string, extra?: Record<string, unknown>) => {
    if (LEVELS[lvl] < threshold) return;
    const time = new Date().toISOString();
    if (text) {
      const rest = Object.entries({ ...fields, ...extra }).filter(([, v]) => v !== undefined).map(([k, v]) => textField(k, v));
      process.stderr.write(`${time} ${lvl.toUpperCase().padEnd(5)} ${message}${rest.length ? ` ${rest.join(' ')}` : ''}\n`);
      return;
    }
    const line = { time, level: lvl, msg: message, ...fields, ...extra };
    process.stderr.write(`${JSON.stringify(line, jsonValue)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
