import { createHash } from 'node:crypto';
import { PAGE_SCRIPT } from './page-script.ts';

/**
 * The console: one HTML page with its style and script inline, nothing fetched from elsewhere (no fonts, no CDN),
 * so it works on a machine with no network. It reads the service's own JSON (/console/*.json); the
 * Content-Security-Policy allows exactly that and this page's own script and style, by their hashes.
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --bg: #fff; --panel: #f6f8fa; --line: #d0d7de;
  --ok: #1a7f37; --bad: #cf222e; --accent: #0969da; --s1: #0969da; --s2: #cf222e; --s3: #8250df; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #161b22; --line: #30363d;
  --ok: #3fb950; --bad: #f85149; --accent: #4493f8; --s1: #4493f8; --s2: #f85149; --s3: #bc8cff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header, main, footer { max-width: 78rem; margin: 0 auto; padding: 0.75rem 1rem; }
header { display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; align-items: baseline; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.35rem; margin: 0; }
h2 { font-size: 1.2rem; margin: 0 0 0.25rem; display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
h4 { font-size: 0.9rem; margin: 0.6rem 0 0.2rem; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -100vw; } .skip:focus { left: 1rem; top: 0.5rem; background: var(--bg); padding: 0.25rem 0.5rem; }
nav ul { display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; list-style: none; margin: 0; padding: 0; }
.model { border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 1rem 0; background: var(--panel); }
.columns { display: grid; gap: 0 1.5rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 26rem), 1fr)); }
.charts { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 20rem), 1fr)); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
caption { text-align: left; color: var(--muted); font-size: 0.85rem; padding-bottom: 0.25rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
code { font: 0.85rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.badge { font-size: 0.8rem; font-weight: 600; padding: 0.05rem 0.5rem; border-radius: 1rem; border: 1px solid currentColor; white-space: nowrap; }
.ok { color: var(--ok); } .bad, .error-text { color: var(--bad); }
.muted, .hint, .meta, .links { color: var(--muted); font-size: 0.88rem; margin: 0.25rem 0; }
label { font-weight: 600; display: block; }
textarea { width: 100%; font: 0.85rem/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: inherit; background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem; resize: vertical; }
.buttons { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0.5rem 0; }
button { font: inherit; font-weight: 600; padding: 0.45rem 1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; min-height: 2.5rem; }
button.secondary { background: transparent; color: var(--accent); }
button:disabled { opacity: 0.6; cursor: progress; }
.error-box { border: 1px solid var(--bad); color: var(--bad); border-radius: 6px; padding: 0.5rem; white-space: pre-wrap; overflow-wrap: anywhere; }
figure { margin: 0; }
svg { width: 100%; height: 7.5rem; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; }
.axis { stroke: var(--line); stroke-width: 1; }
.line { fill: none; stroke-width: 2; vector-effect: non-scaling-stroke; }
polyline.s1 { stroke: var(--s1); } polyline.s2 { stroke: var(--s2); } polyline.s3 { stroke: var(--s3); }
circle.s1 { fill: var(--s1); } circle.s2 { fill: var(--s2); } circle.s3 { fill: var(--s3); }
.time-axis { display: flex; justify-content: space-between; font-size: 0.75rem; color: var(--muted); }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
details { margin: 0.25rem 0; } summary { cursor: pointer; color: var(--accent); }
pre.raw { max-height: 16rem; overflow: auto; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem; }
figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 0.25rem; }
.key.s1 { color: var(--s1); } .key.s2 { color: var(--s2); } .key.s3 { color: var(--s3); }
.key { font-weight: 600; }
@media (max-width: 40rem) {
  table.stacked thead { display: none; }
  table.stacked tr { display: block; border-bottom: 1px solid var(--line); padding: 0.25rem 0; }
  table.stacked td { display: grid; grid-template-columns: 6.5rem minmax(0, 1fr); gap: 0.5rem; border: 0; padding: 0.15rem 0.25rem; }
  table.stacked td::before { content: attr(data-label); font-weight: 600; color: var(--muted); }
}
.offline { background: var(--bad); color: #fff; padding: 0.5rem 1rem; margin: 0; }
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pyml serve console</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<a class="skip" href="#models">Skip to the models</a>
<header>
  <h1>pyml serve</h1>
  <span id="server" class="muted"></span>
  <span>service <span id="ready" class="badge">…</span></span>
  <nav aria-label="Models"><ul id="nav"></ul></nav>
  <span class="links"><a href="/v2/docs/openapi.json">OpenAPI document</a> · <a href="/metrics">Prometheus metrics</a></span>
</header>
<p id="offline" class="offline" role="alert" hidden></p>
<main id="models" tabindex="-1">
  <p id="empty" class="muted" hidden>No models are served.</p>
</main>
<footer class="muted">Models, readiness and charts refresh every few seconds from this service's own metrics.</footer>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;

/** The page's headers: HTML, never cached, and a policy that lets it run only its own inline script and style. */
export const CONSOLE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-length': String(Buffer.byteLength(CONSOLE_HTML)),
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': [
    "default-src 'none'", `script-src ${sha256(PAGE_SCRIPT)}`, `style-src ${sha256(STYLE)}`, "connect-src 'self'", "img-src 'self' data:",
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; '),
};
