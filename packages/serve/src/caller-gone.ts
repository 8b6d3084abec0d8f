/**
 * Tells a call in progress that its caller went away (cancelled, disconnected) before its answer, so the call to
 * the model is called off too and its concurrency slot freed, instead of running on for nobody.
 */
export class CallerGone {
  private listener?: () => void;
  private gone = false;

  /** Calls `listener` when the caller goes away, at once if it already has; a later listener replaces it. */
  onGone(listener: () => void): void {
    this.listener = listener;
    if (this.gone) listener();
  }

  fire(): void {
    if (this.gone) return;
    this.gone = true;
    this.listener?.();
  }
}
