import type { Logger } from '@pyml/contract';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

/**
 * JSON-lines logger on stderr: stdout belongs to the protocol (the ready line, predictions, Arrow IPC), and a
 * supervisor can parse one object per line. PYML_LOG_LEVEL picks the threshold (default info).
 */
export function createLogger(fields: Record<string, unknown> = {}, level: string = process.env.PYML_LOG_LEVEL ?? 'info'): Logger {
  const threshold = LEVELS[level as Level] ?? LEVELS.info;
  const emit = (lvl: Level, message: string, extra?: Record<string, unknown>) => {
    if (LEVELS[lvl] < threshold) return;
    const line = { time: new Date().toISOString(), level: lvl, msg: message, ...fields, ...extra };
    process.stderr.write(`${JSON.stringify(line, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
