/**
 * Several sidecars running the same model, so requests are served concurrently: a Python process runs one predict
 * at a time (the GIL, and most models' own state), so concurrency comes from processes. Each request goes to the
 * sidecar with the fewest requests in flight; each sidecar restarts on its own when it dies.
 */
import type { Tensors } from '@pyml/contract';
import type { Sidecar } from './sidecar.ts';

export class SidecarPool {
  private readonly inFlight: number[];

  constructor(private readonly sidecars: Sidecar[]) {
    if (sidecars.length === 0) throw new Error('a sidecar pool needs at least one sidecar');
    this.inFlight = sidecars.map(() => 0);
  }

  get size(): number { return this.sidecars.length; }
  get pids(): (number | undefined)[] { return this.sidecars.map((s) => s.pid); }
  get restarts(): number { return this.sidecars.reduce((n, s) => n + s.restartCount, 0); }
  get info(): Record<string, unknown> { return { ...this.sidecars[0].info, workers: this.sidecars.length }; }

  async start(): Promise<void> {
    // One after the other: init may load large weights, and N at once would need N times the memory at the peak.
    for (const s of this.sidecars) await s.start();
  }

  async predict(inputs: Tensors, frame: boolean): Promise<Tensors> {
    let pick = 0;
    for (let i = 1; i < this.inFlight.length; i++) if (this.inFlight[i] < this.inFlight[pick]) pick = i;
    this.inFlight[pick]++;
    try {
      return await this.sidecars[pick].predict(inputs, frame);
    } finally {
      this.inFlight[pick]--;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.sidecars.map((s) => s.stop()));
  }
}
