/**
 * What a run must undo, in the reverse order it was set up, as AsyncDisposableStack does (Node 20 has none): each
 * step is awaited, and every step runs even when one fails; the first failure is thrown once all have run.
 */
export class CleanupStack {
  private readonly steps: (() => unknown)[] = [];

  defer(step: () => unknown): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    let failure: { error: unknown } | undefined;
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }
}
