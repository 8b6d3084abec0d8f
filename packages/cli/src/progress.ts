import { didYouMean } from '@pyml/errors';
import { formatBytes, usage } from './output.ts';

/**
 * How progress is shown, Docker's `--progress` convention: `tty` redraws one status line with bars, `plain` prints
 * one line per step (and per finished transfer) with times and sizes, for CI logs, `quiet` prints nothing but
 * warnings. `auto` is `tty` on a terminal and `plain` otherwise. Everything goes to stderr: stdout is the result.
 */
export type ProgressMode = 'tty' | 'plain' | 'quiet';
export const PROGRESS_CHOICES = ['auto', 'tty', 'plain', 'quiet'] as const;
type ProgressChoice = (typeof PROGRESS_CHOICES)[number];

let flagChoice: ProgressChoice | undefined;

/** Checks a `--progress` / PYML_PROGRESS value; `from` names where it came from in the error. */
export function parseProgressChoice(value: string, from: string): ProgressChoice {
  if ((PROGRESS_CHOICES as readonly string[]).includes(value)) return value as ProgressChoice;
  const suggestion = didYouMean(value, [...PROGRESS_CHOICES]);
  throw usage(`${from} must be one of ${PROGRESS_CHOICES.join(', ')}; got '${value}'${suggestion ? `; ${suggestion}` : ''}`);
}

/** Set by main.ts from the global `--progress` option, which every command takes. */
export function setProgressChoice(choice: ProgressChoice | undefined): void {
  flagChoice = choice;
}

/**
 * The mode in force: `--progress`, else PYML_PROGRESS, else quiet with `--json` (its stdout is for a program; stderr
 * keeps only warnings and errors unless asked), else auto.
 */
export function progressMode(json: boolean): ProgressMode {
  const env = process.env.PYML_PROGRESS;
  const choice = flagChoice ?? (env ? parseProgressChoice(env, 'PYML_PROGRESS') : json ? 'quiet' : 'auto');
  if (choice === 'auto') return process.stderr.isTTY ? 'tty' : 'plain';
  return choice;
}

/**
 * What plugins and the registry client log as plain messages but a user must see even with `--progress quiet`:
 * a check that was skipped, something left out, a retry. The plugin API's log has no level (HookContext.log),
 * so these are recognised by their wording; a message may also say `warning:` itself.
 */
const WARNING_WORDS = /^warning:|\btrial load skipped\b|\bwas parsed only\b|\bleft out of\b|\bcannot run on this\b|\bretrying in\b|\bdeprecated\b/i;

export function isWarning(message: string): boolean {
  return WARNING_WORDS.test(message);
}

interface Transfer {
  bytes: number;
  total?: number;
  started: number;
  /** Bytes already said in a plain line (a plain line is printed again only when something moved). */
  reported: number;
  finished: boolean;
}

const PLAIN_EVERY_MS = 5000;
const REDRAW_EVERY_MS = 100;

/**
 * Steps, byte counters and warnings of one long-running command, on stderr. Commands call `step`, `bytesDone`,
 * `warn` and `clear` whatever the mode; the mode decides what is shown. `new Progress(showProgress({ json }))`
 * takes the mode in force (`true`) or quiet (`false`); a mode may also be given.
 */
export class Progress {
  readonly mode: ProgressMode;
  private readonly started = Date.now();
  private readonly transfers = new Map<string, Transfer>();
  private lastDraw = 0;
  private lastPlain = 0;
  private line = '';
  private statusText = '';

  constructor(enabled: boolean | ProgressMode = true) {
    this.mode = enabled === true ? progressMode(false) : enabled === false ? 'quiet' : enabled;
  }

  get shown(): boolean {
    return this.mode !== 'quiet';
  }

  /** A step: `• message` on a terminal, `[  1.2s] message` in plain; a warning's wording makes it a warning. */
  step(message: string): void {
    if (isWarning(message)) return this.warn(message.replace(/^warning:\s*/i, ''));
    if (this.mode === 'quiet') return;
    if (this.mode === 'plain') {
      this.flushPlain(true);
      this.write(`${this.stamp()} ${message}\n`);
      return;
    }
    this.transfers.clear();
    this.statusText = '';
    this.erase();
    this.write(`• ${message}\n`);
  }

  /** Printed in every mode, quiet too, and never on stdout. */
  warn(message: string): void {
    this.erase();
    this.write(`warning: ${message}\n`);
    this.redraw();
  }

  /** Bytes done of one part (a layer, a blob); `total` when known gives done/total, a percentage and an ETA. */
  bytesDone(part: string, bytes: number, total?: number): void {
    if (this.mode === 'quiet') return;
    const now = Date.now();
    let t = this.transfers.get(part);
    if (!t) this.transfers.set(part, (t = { bytes, started: now, reported: 0, finished: false }));
    t.bytes = bytes;
    if (total !== undefined) t.total = total;
    if (this.mode === 'plain') {
      if (t.total !== undefined && bytes >= t.total && !t.finished) {
        t.finished = true;
        this.write(`${this.stamp()}   ${part}: ${describeTransfer(t, now)}\n`);
        t.reported = bytes;
      } else if (now - this.lastPlain >= PLAIN_EVERY_MS) this.flushPlain(false);
      return;
    }
    if (now - this.lastDraw < REDRAW_EVERY_MS && !(t.total !== undefined && bytes >= t.total)) return;
    this.lastDraw = now;
    this.redraw();
  }

  /** A free-form status (rows done, a rate) redrawn on a terminal, printed every few seconds in plain. */
  status(text: string): void {
    if (this.mode === 'quiet') return;
    const now = Date.now();
    this.statusText = text.trim();
    if (this.mode === 'plain') {
      if (now - this.lastPlain >= PLAIN_EVERY_MS) {
        this.lastPlain = now;
        this.write(`${this.stamp()}   ${this.statusText}\n`);
      }
      return;
    }
    if (now - this.lastDraw < REDRAW_EVERY_MS) return;
    this.lastDraw = now;
    this.redraw();
  }

  /** Ends the current status: the terminal line is erased, plain prints what it has not said yet. */
  clear(): void {
    if (this.mode === 'plain') this.flushPlain(true);
    this.erase();
    this.transfers.clear();
    this.statusText = '';
  }

  private stamp(): string {
    return `[${((Date.now() - this.started) / 1000).toFixed(1).padStart(6)}s]`;
  }

  /** Plain: one line per part that moved since it was last said (all of them at a step's end). */
  private flushPlain(ending: boolean): void {
    const now = Date.now();
    this.lastPlain = now;
    for (const [part, t] of this.transfers) {
      if (t.finished || t.bytes === t.reported) continue;
      if (ending) t.finished = true;
      t.reported = t.bytes;
      this.write(`${this.stamp()}   ${part}: ${describeTransfer(t, now)}\n`);
    }
    if (ending) {
      this.transfers.clear();
      if (this.statusText) this.write(`${this.stamp()}   ${this.statusText}\n`);
      this.statusText = '';
    }
  }

  private redraw(): void {
    if (this.mode !== 'tty') return;
    const now = Date.now();
    const active = [...this.transfers].filter(([, t]) => !(t.total !== undefined && t.bytes >= t.total));
    const shown = (active.length ? active : [...this.transfers].slice(-1)).slice(-3);
    const width = (process.stderr.columns || 80) - 1;
    const parts = shown.map(([part, t]) => `${part} ${bar(t, now, width)}`);
    const text = [this.statusText, ...parts].filter(Boolean).join('  ');
    if (!text) return;
    this.line = `  ${text}`.slice(0, width);
    this.write(`\r\x1b[2K${this.line}`);
  }

  private erase(): void {
    if (this.mode === 'tty' && this.line) this.write('\r\x1b[2K');
    this.line = '';
  }

  private write(text: string): void {
    process.stderr.write(text);
  }
}

/** `12.0 MiB / 50.0 MiB (24%) in 3.1 s, ETA 10 s`, or `12.0 MiB in 3.1 s (3.9 MiB/s)` with no total. */
export function describeTransfer(t: { bytes: number; total?: number; started: number }, now = Date.now()): string {
  const seconds = (now - t.started) / 1000;
  const rate = seconds > 0 ? t.bytes / seconds : 0;
  if (t.total === undefined || t.total === 0) return `${formatBytes(t.bytes)} in ${seconds.toFixed(1)} s${rate > 0 ? ` (${formatBytes(Math.round(rate))}/s)` : ''}`;
  const done = t.bytes >= t.total;
  return `${formatBytes(t.bytes)} / ${formatBytes(t.total)} (${percent(t)}%) in ${seconds.toFixed(1)} s${done ? '' : `, ETA ${eta(t, rate)}`}`;
}

/** `[=====>     ] 12.0/50.0 MiB 24% ETA 10s`, narrower on a narrow terminal. */
function bar(t: Transfer, now: number, width: number): string {
  if (t.total === undefined || t.total === 0) return formatBytes(t.bytes);
  const seconds = (now - t.started) / 1000;
  const rate = seconds > 0 ? t.bytes / seconds : 0;
  const cells = width >= 100 ? 20 : 10;
  const filled = Math.min(cells, Math.floor((t.bytes / t.total) * cells));
  const drawn = `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === cells ? '=' : '>') : ''}${' '.repeat(cells - filled)}]`;
  return `${drawn} ${formatBytes(t.bytes)}/${formatBytes(t.total)} ${percent(t)}%${t.bytes < t.total ? ` ETA ${eta(t, rate)}` : ''}`;
}

function percent(t: { bytes: number; total?: number }): number {
  return Math.min(100, Math.floor((t.bytes / (t.total || 1)) * 100));
}

function eta(t: { bytes: number; total?: number }, rate: number): string {
  if (rate <= 0) return '?';
  const s = Math.ceil(((t.total ?? 0) - t.bytes) / rate);
  return s >= 120 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
