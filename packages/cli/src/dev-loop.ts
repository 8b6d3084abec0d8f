// The dev loop: `pyml serve DIR` and `pyml predict DIR` build a model project before running it, and
// `pyml serve DIR --watch` rebuilds on change and swaps the model in. Loaded only for a project directory: it
// holds the builder, which the pyml-serve image's bundle of `pyml serve` must not.
import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';
import { build, type BuildResult } from '@pyml/core';
import type { createLogger } from '@pyml/runtime/logger';
import { EXIT, PymlError } from '@pyml/errors';
import type { PredictionService } from '@pyml/serve';
import { showProgress } from './output.ts';
import { Progress } from './progress.ts';

/** Builds a project (through the blob cache, into PROJECT/.pyml/image) with progress on stderr. */
export async function buildProject(dir: string, options: { json: boolean }): Promise<BuildResult> {
  const progress = new Progress(showProgress({ json: options.json }));
  progress.step(`building ${dir}`);
  try {
    const result = await build({ project: dir, log: (m) => progress.step(m), onProgress: (e) => progress.bytesDone(e.part, e.bytes) });
    progress.step(`built ${result.refName} (${result.digest.slice(0, 19)}) in ${result.seconds.toFixed(2)} s`);
    return result;
  } catch (error) {
    if (error instanceof PymlError) throw error;
    throw new PymlError(`cannot build ${dir}: ${(error as Error).message}`, EXIT.failure);
  } finally {
    progress.clear();
  }
}

/** Changes here never change the image: the build's own output, dependencies, VCS and editors' files. */
function ignored(file: string): boolean {
  return file.split(path.sep).some((part) => part.startsWith('.') || part === 'node_modules' || part === '__pycache__' || part.endsWith('~'));
}

export interface WatchOptions {
  service: PredictionService;
  logger: ReturnType<typeof createLogger>;
  /** Quiet time after the last change before a rebuild: editors write a file in several steps. */
  debounceMs?: number;
  /** How long the replaced process may take to finish its calls. */
  graceMs?: number;
  json: boolean;
}

/**
 * Watches each project (recursively, fs.watch) and, after a quiet `debounceMs`, rebuilds it and swaps the new image
 * into the service (PredictionService.replaceImage: the old process serves until the new one is ready, then drains).
 * A failed build or start is logged and the running model keeps serving; changes during a rebuild make one more.
 */
export function watchProjects(projects: { dir: string; digest: string }[], options: WatchOptions): { close(): void } {
  const watchers: FSWatcher[] = [];
  const timers = new Set<NodeJS.Timeout>();
  for (const project of projects) {
    let timer: NodeJS.Timeout | undefined;
    let running = false;
    let again = false;
    /** When the first change of the current round was seen: what "edit → new code answering" counts from. */
    let changedAt = 0;
    const rebuild = async () => {
      running = true;
      again = false;
      const since = changedAt;
      changedAt = 0;
      const { logger } = options;
      try {
        const result = await buildProject(project.dir, { json: options.json });
        if (result.digest === project.digest) {
          logger.info('rebuilt: the image did not change', { project: project.dir, digest: result.digest });
        } else {
          const swapped = await options.service.replaceImage(result.layout, options.graceMs);
          project.digest = result.digest;
          logger.info('serving the new build', { project: project.dir, model: swapped.model, pid: swapped.pid, digest: result.digest, ms: Date.now() - since });
        }
      } catch (error) {
        logger.error('rebuild failed; the running model keeps serving', { project: project.dir, error: (error as Error).message });
      } finally {
        running = false;
        if (again) schedule();
      }
    };
    const schedule = () => {
      if (timer) { clearTimeout(timer); timers.delete(timer); }
      timer = setTimeout(() => {
        timers.delete(timer!);
        timer = undefined;
        if (running) again = true;
        else void rebuild();
      }, options.debounceMs ?? 150);
      timers.add(timer);
    };
    const watcher = watch(project.dir, { recursive: true }, (_event, file) => {
      if (file && ignored(file)) return;
      changedAt ||= Date.now();
      if (running) again = true;
      else schedule();
    });
    watcher.on('error', (error) => options.logger.error('watching stopped', { project: project.dir, error: error.message }));
    watchers.push(watcher);
  }
  options.logger.info('watching for changes', { projects: projects.map((p) => p.dir) });
  return {
    close() {
      for (const w of watchers) w.close();
      for (const t of timers) clearTimeout(t);
    },
  };
}
