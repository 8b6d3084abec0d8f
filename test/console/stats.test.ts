import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ServiceMetrics } from '../../packages/serve/src/metrics.ts';
import { ServiceStats, quantileMs } from '../../packages/serve/src/stats.ts';

/**
 * The console's charts come from the service's own Prometheus metrics (prom-client's counters and histogram, as
 * /metrics serves them): rates over an interval, and p50/p99 interpolated within the histogram's buckets as
 * Prometheus's histogram_quantile does. Checked here against counts worked out by hand.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('quantiles interpolate within a bucket; the open-ended bucket gives its lower bound; no observations give null', () => {
  // 90 in (0.25 ms, 0.5 ms], 10 in (25 ms, 50 ms]: cumulative counts by upper bound (seconds).
  const buckets = new Map([[0.00025, 0], [0.0005, 90], [0.025, 90], [0.05, 100], [Infinity, 100]]);
  assert.ok(Math.abs(quantileMs(buckets, 0.5)! - (0.25 + 0.25 * (50 / 90))) < 1e-9);
  assert.ok(Math.abs(quantileMs(buckets, 0.99)! - (25 + 25 * (9 / 10))) < 1e-9);
  assert.is(quantileMs(new Map([[0.01, 0], [Infinity, 4]]), 0.5), 10);
  assert.is(quantileMs(new Map([[0.01, 0], [Infinity, 0]]), 0.5), null);
});

test('a point covers the traffic between two looks: per model, summed over versions and protocols, only that interval\'s latencies', async () => {
  const metrics = new ServiceMetrics(() => []);
  const stats = new ServiceStats(metrics, { intervalMs: 200, errors: 3 });
  // Traffic before the first look is in the totals, not in any point.
  metrics.requests.inc({ model: 'a', version: '1', protocol: 'http' }, 7);
  metrics.latency.observe({ model: 'a', version: '1', protocol: 'http' }, 5);
  const looked = Date.now();
  const first = await stats.snapshot();
  assert.equal(first.models.a.points, []);
  for (let i = 0; i < 90; i++) metrics.latency.observe({ model: 'a', version: i % 2 ? '1' : '2', protocol: i % 3 ? 'http' : 'grpc' }, 0.0004);
  for (let i = 0; i < 10; i++) metrics.latency.observe({ model: 'a', version: '2', protocol: 'grpc' }, 0.04);
  metrics.requests.inc({ model: 'a', version: '1', protocol: 'http' }, 60);
  metrics.requests.inc({ model: 'a', version: '2', protocol: 'grpc' }, 40);
  metrics.errors.inc({ model: 'a', version: '2', protocol: 'grpc', code: 'INTERNAL' }, 5);
  metrics.requests.inc({ model: 'b', version: '1', protocol: 'http' }, 1);
  await sleep(300);
  // Two viewers at once share one sample.
  const [second, same] = await Promise.all([stats.snapshot(), stats.snapshot()]);
  assert.equal(second.models.a.points, same.models.a.points);
  assert.is(second.models.a.points.length, 1);
  const point = second.models.a.points[0];
  // 100 requests over the interval, which began during the first look (between `looked` and its answer).
  const [longest, shortest] = [(point.t - looked) / 1000, (point.t - first.now) / 1000];
  assert.ok(point.requestsPerS >= 100 / longest - 1e-9 && point.requestsPerS <= 100 / shortest + 1e-9, `requests/s ${point.requestsPerS} over ${shortest}-${longest} s`);
  assert.ok(Math.abs(point.errorsPerS / point.requestsPerS - 0.05) < 1e-9, 'errors are 5 of 100');
  assert.ok(Math.abs(point.p50Ms! - (0.25 + 0.25 * (50 / 90))) < 1e-9, `p50 ${point.p50Ms}`);
  assert.ok(Math.abs(point.p99Ms! - 47.5) < 1e-9, `p99 ${point.p99Ms}`);
  assert.equal([second.models.a.requests, second.models.a.errors, second.models.b.requests], [107, 5, 1]);
  // An interval with no answered request has no latency.
  await sleep(300);
  const quiet = (await stats.snapshot()).models.a.points.at(-1)!;
  assert.equal([quiet.requestsPerS, quiet.p50Ms, quiet.p99Ms], [0, null, null]);
});

test('recent errors: the latest N per model, long messages cut', async () => {
  const stats = new ServiceStats(new ServiceMetrics(() => []), { errors: 3 });
  for (let i = 1; i <= 5; i++) stats.noteError('a', '1', 'http', 'INVALID_ARGUMENT', `bad ${i}`);
  stats.noteError('b', '', 'grpc', 'UNAVAILABLE', 'x'.repeat(2000));
  const { models } = await stats.snapshot();
  assert.equal(models.a.recentErrors.map((e) => e.message), ['bad 3', 'bad 4', 'bad 5']);
  assert.is(models.b.recentErrors[0].message.length, 501);
  assert.equal([models.b.recentErrors[0].protocol, models.b.recentErrors[0].code], ['grpc', 'UNAVAILABLE']);
});

test.run();
