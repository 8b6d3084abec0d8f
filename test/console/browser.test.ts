import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Served, buildImages, http, startServe } from '../serve/fixtures.ts';

/**
 * The console in a real browser: Debian's Chromium (installed by scripts/setup.sh), headless, driven by
 * playwright-core, which never downloads a browser here. Two models (iris, and the dataframe model frame) served
 * by a real `pyml serve`; the page must list them, run the try-it form (by keyboard too) with the service's
 * answers, show the service's error for a bad input, and move its charts after a burst of requests. Screenshots at
 * a laptop and a phone width go to PYML_SCREENSHOT_DIR (default: a folder under the temp dir), whose path is printed.
 */

const CHROMIUM = '/usr/bin/chromium';
const FLOWERS = { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }] };
const BAD = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [5.1, 3.5, 1.4] }] };

let built: Awaited<ReturnType<typeof buildImages>>;
let served: Served;
let browser: Browser;
let page: Page;
/** What the page logged as errors (a script error, a policy violation, a failed load). */
const pageErrors: string[] = [];

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`these tests drive Debian's Chromium at ${CHROMIUM}, which is not installed: run bash scripts/setup.sh (apt-get install chromium)`);
  built = await buildImages(['iris', 'frame']);
  served = await startServe([built.images.iris, built.images.frame]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless=new'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`http://${served.ready.http}/`);
  await page.waitForSelector('section.model >> nth=1').catch((error: Error) => {
    throw new Error(`the console showed no models: ${error.message}\npage errors: ${pageErrors.join('\n') || 'none'}\npage: ${served.ready.http}`);
  });
});

test.after(async () => {
  await browser?.close();
  if (served) assert.is(await served.stop(), 0, 'serve exits 0 on SIGTERM');
  await built?.cleanup();
});

const section = (name: string) => page.locator('section.model', { has: page.locator('h2', { hasText: new RegExp(`^${name}\\b`) }) });
const rows = (name: string, nth: number) => section(name).locator('table').nth(nth).locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
const manifestDigest = async (image: string) => (JSON.parse(await readFile(join(image, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0].digest;

/** Sends the form of `model` with `body` typed in by keyboard only; resolves with what the result area shows. */
async function sendByKeyboard(model: string, body: unknown): Promise<{ meta: string; error?: string; raw?: unknown }> {
  const form = section(model);
  await form.locator('.result').evaluate((el) => el.replaceChildren());
  await form.getByLabel('Request body (JSON)').focus();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(JSON.stringify(body));
  // Tab leaves the text area for the send button, which Enter presses.
  await page.keyboard.press('Tab');
  assert.is(await page.evaluate(() => document.activeElement?.textContent), 'Send request');
  await page.keyboard.press('Enter');
  await form.locator('.result .meta').waitFor();
  const meta = (await form.locator('.result .meta').textContent())!;
  if (await form.locator('.result .error-box').count()) return { meta, error: (await form.locator('.result .error-box').textContent())! };
  return { meta, raw: JSON.parse((await form.locator('.result details code').textContent())!) };
}

test('the page lists each served model: versions, readiness, image digests and the signature as a table', async () => {
  assert.equal(await page.locator('section.model h2 > span:first-child').allTextContents(), ['iris', 'frame']);
  assert.equal(await page.locator('nav a').allTextContents(), ['iris', 'frame']);
  assert.is(await page.locator('#ready').textContent(), 'ready');
  assert.equal(await rows('iris', 0), [['1.0.0', 'ready', await manifestDigest(built.images.iris), `embedded:${built.images.iris}`]]);
  assert.equal(await rows('frame', 0), [['0.1.0', 'ready', await manifestDigest(built.images.frame), `embedded:${built.images.frame}`]]);
  assert.equal(await rows('iris', 1), [['input', 'input', 'FP32', '[-1, 4]'], ['output', 'probabilities', 'FP32', '[-1, 3]'], ['output', 'label', 'INT64', '[-1]']]);
  assert.equal(await rows('frame', 1), [
    ['input', 'a', 'FP64', '[-1]'], ['input', 'n', 'INT64', '[-1]'], ['input', 'name', 'BYTES', '[-1]'],
    ['output', 'score', 'FP64', '[-1]'], ['output', 'greeting', 'BYTES', '[-1]'],
  ]);
  // Each model links its own OpenAPI document.
  assert.is(await section('iris').getByRole('link', { name: 'OpenAPI document' }).getAttribute('href'), '/v2/models/iris/docs/openapi.json');
});

test('try-it: the prefilled example, and two flowers typed by keyboard, show the service\'s outputs', async () => {
  const doc = (await http(served.ready.http, '/v2/models/iris/docs/openapi.json')).body;
  const example = doc.paths['/v2/models/iris/infer'].post.requestBody.content['application/json'].example;
  assert.equal(JSON.parse(await section('iris').getByLabel('Request body (JSON)').inputValue()), example, 'the form holds the document\'s example');
  await section('iris').getByRole('button', { name: 'Send request' }).click();
  await section('iris').locator('.result details code').waitFor({ state: 'attached' });
  const shown = JSON.parse((await section('iris').locator('.result details code').textContent())!);
  assert.equal(shown, (await http(served.ready.http, '/v2/models/iris/infer', example)).body);

  const flowers = await sendByKeyboard('iris', FLOWERS);
  assert.match(flowers.meta, /^HTTP 200 · /);
  const direct = (await http(served.ready.http, '/v2/models/iris/infer', FLOWERS)).body;
  const raw = flowers.raw as typeof direct;
  // Setosa and virginica, the dataset's labels for these two flowers; the probabilities as the service gives them.
  assert.equal(raw.outputs[1], { name: 'label', datatype: 'INT64', shape: [2], data: [0, 2] });
  assert.equal(raw.outputs[0], direct.outputs[0]);
  assert.equal(await section('iris').locator('.result tbody tr').nth(1).locator('td').allTextContents(), ['label', 'INT64', '[2]', '[0, 2]']);

  // The dataframe model's example: one row of every column, strings included.
  await section('frame').getByRole('button', { name: 'Send request' }).click();
  await section('frame').locator('.result details code').waitFor({ state: 'attached' });
  const frame = JSON.parse((await section('frame').locator('.result details code').textContent())!);
  assert.equal(frame.outputs.map((o: { name: string; data: unknown[] }) => [o.name, o.data]), [['score', [2]], ['greeting', ['hi text 1']]]);
});

test('a bad input shows the service\'s own error message, and it is listed under the model\'s recent errors', async () => {
  const direct = await http(served.ready.http, '/v2/models/iris/infer', BAD);
  assert.is(direct.status, 400);
  const shown = await sendByKeyboard('iris', BAD);
  assert.match(shown.meta, /^HTTP 400 · /);
  assert.is(shown.error, direct.body.error);
  assert.match(shown.error!, "input 'input': expected shape [-1, 4], got [1, 3]");
  await page.waitForFunction((message) => [...document.querySelectorAll('#model-iris .errors td')].some((td) => td.textContent === message), direct.body.error, { timeout: 15_000 });
  const latest = await section('iris').locator('.errors tbody tr').first().locator('td').allTextContents();
  assert.equal(latest.slice(1), ['1.0.0', 'http', 'INVALID_ARGUMENT', direct.body.error]);
});

test('the charts move after a burst of requests: request rate and latency from the service\'s metrics', async () => {
  const rate = section('iris').locator('figure').nth(0);
  const latency = section('iris').locator('figure').nth(1);
  // Quiet first: let an interval without traffic go by, so the burst shows as a rise.
  await page.waitForTimeout(4_500);
  const before = await rate.locator('polyline[data-series=requestsPerS]').getAttribute('points');
  const requests = 300;
  let next = 0;
  await Promise.all(Array.from({ length: 6 }, async () => {
    while (next++ < requests) assert.is((await http(served.ready.http, '/v2/models/iris/infer', FLOWERS)).status, 200);
  }));
  // Within a few refreshes the latest point shows the burst.
  await page.waitForFunction(() => {
    const text = document.querySelector('#model-iris figure .key[data-series=requestsPerS]')?.textContent ?? '';
    return Number(/requests ([\d.]+)/.exec(text)?.[1] ?? 0) > 1;
  }, undefined, { timeout: 20_000 });
  const after = await rate.locator('polyline[data-series=requestsPerS]').getAttribute('points');
  assert.is.not(after, before, 'the request-rate line changed');
  // Some point of the line is above the axis (y = 100 is zero).
  assert.ok(after!.split(' ').some((xy) => Number(xy.split(',')[1]) < 90), `a point above zero: ${after}`);
  const p50 = await latency.locator('.key[data-series=p50Ms]').textContent();
  const p99 = await latency.locator('.key[data-series=p99Ms]').textContent();
  assert.match(p50!, /p50 [\d.]+ ms/);
  assert.match(p99!, /p99 [\d.]+ ms/);
  assert.ok(await latency.locator('polyline[data-series=p99Ms]').count() === 1, 'a p99 line');
});

test('keyboard: Tab goes from the skip link through the first model\'s links and form in reading order; every field has a label', async () => {
  await page.goto(`http://${served.ready.http}/`);
  await page.waitForSelector('section.model >> nth=1');
  const order: string[] = [];
  for (let i = 0; i < 14; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      return `${el.tagName.toLowerCase()}:${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim() || el.id}`;
    }));
  }
  assert.is(order[0], 'a:Skip to the models');
  const textarea = order.findIndex((o) => o.startsWith('textarea:'));
  const send = order.indexOf('button:Send request');
  assert.ok(order.indexOf('a:iris') < textarea && textarea < send && send < order.indexOf('button:Reset to example'), order.join(' → '));
  assert.is(await page.getByLabel('Request body (JSON)').count(), 2, 'one labelled request field per model');
});

test('screenshots at a laptop and a phone width; nothing wider than the phone screen; no script errors', async () => {
  const dir = process.env.PYML_SCREENSHOT_DIR ?? join(tmpdir(), 'pyml-console-screenshots');
  await mkdir(dir, { recursive: true });
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    const view = await browser.newPage({ viewport: { width, height } });
    view.on('pageerror', (e) => pageErrors.push(String(e)));
    await view.goto(`http://${served.ready.http}/`);
    await view.waitForSelector('section.model >> nth=1');
    await view.locator('#model-iris button[type=submit]').click();
    await view.locator('#model-iris .result table').waitFor();
    // Two refreshes of the charts.
    await view.waitForTimeout(4_500);
    assert.ok(await view.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `no sideways scrolling at ${width} px`);
    const file = join(dir, `console-${width}.png`);
    await view.screenshot({ path: file, fullPage: true });
    console.log(`screenshot (${width} px wide): ${file}`);
    await view.close();
  }
  // The browser logs the bad-input test's 400 itself; anything else is the page's fault.
  assert.equal(pageErrors.filter((e) => !/responded with a status of 400/.test(e)), [], 'the page logged no errors');
});

test.run();
