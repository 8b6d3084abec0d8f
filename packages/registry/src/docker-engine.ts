import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import { imageTarball, type Image } from '@pyml/image';

/** The engine named by DOCKER_HOST (unix://, tcp://), else the default socket: as the docker CLI does. */
export function connectEngine(): Docker {
  return new Docker();
}

export function engineName(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

export interface LoadResult {
  /** What the engine reported loading: `iris:1.0.0` or an image id. */
  loaded: string[];
  tags: string[];
  imageId: string;
}

/**
 * Loads an image into the engine (`docker load`): a docker-archive tarball (`pyml build --tar`), or any Image,
 * streamed as one with nothing written to disk. Then tags it with every name in `tags` the archive did not carry.
 */
export async function loadIntoEngine(source: string | Image, tags: string[], docker = connectEngine()): Promise<LoadResult> {
  const what = typeof source === 'string' ? source : `image ${source.manifestDigest}`;
  let output: NodeJS.ReadableStream;
  try {
    output = await docker.loadImage(typeof source === 'string' ? createReadStream(source) : imageTarball(source), { quiet: true });
  } catch (error) {
    throw engineError('loading the image', error);
  }
  const loaded: string[] = [];
  for (const message of await readJsonLines(output)) {
    if (message.error) throw new Error(`engine ${engineName()} refused the image from ${what}: ${message.error}`);
    const match = /Loaded image(?: ID)?: (\S+)/.exec(message.stream ?? '');
    if (match) loaded.push(match[1]);
  }
  if (loaded.length === 0) throw new Error(`engine ${engineName()} loaded nothing from ${what}`);
  const image = docker.getImage(loaded[0]);
  for (const tag of tags) {
    const colon = tag.lastIndexOf(':');
    const [repo, version] = colon > tag.lastIndexOf('/') ? [tag.slice(0, colon), tag.slice(colon + 1)] : [tag, 'latest'];
    await image.tag({ repo, tag: version }).catch((error) => { throw engineError(`tagging ${tag}`, error); });
  }
  const info = await image.inspect().catch((error) => { throw engineError(`inspecting ${loaded[0]}`, error); });
  return { loaded, tags: info.RepoTags ?? [], imageId: info.Id };
}

/** `docker save NAME` into a temp docker-archive file; the caller removes `dir` when done with it. */
export async function saveFromEngine(name: string, docker = connectEngine()): Promise<{ file: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pyml-engine-'));
  const file = join(dir, 'image.tar');
  try {
    const image = docker.getImage(name);
    await image.inspect().catch((error: Error & { statusCode?: number }) => {
      if (error.statusCode === 404) throw new Error(`engine ${engineName()} has no image ${name}`);
      throw engineError(`looking up ${name}`, error);
    });
    await pipeline(await image.get(), (await open(file, 'w')).createWriteStream());
    return { file, dir };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function engineError(what: string, error: unknown): Error {
  const e = error as Error & { code?: string; statusCode?: number; json?: { message?: string } };
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
    return new Error(`${what}: no Docker engine at ${engineName()} (${e.code}); start one or set DOCKER_HOST`);
  }
  return new Error(`${what} on engine ${engineName()}: ${e.json?.message ?? e.message}`);
}

async function readJsonLines(stream: NodeJS.ReadableStream): Promise<{ stream?: string; error?: string }[]> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  const messages: { stream?: string; error?: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      messages.push(JSON.parse(line) as { stream?: string; error?: string });
    } catch {
      messages.push({ stream: line });
    }
  }
  return messages;
}
