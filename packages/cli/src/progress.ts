import { formatBytes } from './output.ts';

/** One status line on stderr, redrawn at most every 100 ms; silent when not enabled. */
export class Progress {
  private last = 0;
  private readonly bytes = new Map<string, number>();
  private line = '';
  constructor(private readonly enabled: boolean) {}

  step(message: string): void {
    if (!this.enabled) return;
    this.clear();
    process.stderr.write(`• ${message}\n`);
  }

  bytesDone(part: string, bytes: number): void {
    if (!this.enabled) return;
    this.bytes.set(part, bytes);
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const text = [...this.bytes].map(([p, b]) => `${p} ${formatBytes(b)}`).join('  ');
    this.draw(`  ${text}`);
  }

  private draw(text: string): void {
    this.line = text.slice(0, (process.stderr.columns ?? 80) - 1);
    process.stderr.write(`\r\x1b[2K${this.line}`);
  }

  clear(): void {
    if (this.enabled && this.line) process.stderr.write('\r\x1b[2K');
    this.line = '';
  }
}
