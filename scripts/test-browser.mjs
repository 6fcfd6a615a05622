// `npm run test:browser`: runs the Node test files (test/kernels, test/autograd, test/detection and
// its subfolders, test/data) unchanged in
// headless Chromium on WebGPU, then checks the smoke demo page and the long-tail lab
// (scripts/lab-check.mjs). --demo: both pages only; --lab: the lab only.
//   node scripts/test-browser.mjs [test files...] [--demo] [--lab] [--test-timeout=MS] [--timeout=S]
// Each file is bundled with esbuild for the browser (`vitest` -> our shim, index.node -> index.ts,
// node-dawn -> nothing, process.env -> {REQUIRE_WEBGPU: '1'}) and run in a fresh page, like
// vitest's one fork per file, except the top-level files of SHARED_PAGE_DIRS, which share one page.
// A file whose imports reach a Node built-in is skipped by design, with the reason. Exit code 1 on
// any failure, on no adapter, or when nothing ran. `bundle` and `testFiles` are exported for
// test/browser/bundle.test.ts.
import { build } from 'esbuild';
import { decode as decodePng } from 'fast-png';
import { chromium } from 'playwright-core';
import { existsSync, readdirSync } from 'node:fs';
import { builtinModules, SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildWeb, webOptions } from './build.mjs';
import { serveStatic } from './static-server.mjs';
import { runLab } from './lab-check.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
// everything in kernels/, autograd/, detection/ and data/ but file reading runs in the browser too
// (a test that reads files imports node:fs and is skipped by design); subfolders one level deep
const TEST_DIRS = ['test/kernels', 'test/autograd', 'test/detection', 'test/data'];
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// SwiftShader's WebGPU adapter is what headless Chromium offers on a machine without a GPU.
const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu'];
const DEMO_TIMEOUT_MS = 120_000;
// The top-level test files of these folders run in one page, each under a suite of its own name.
// SwiftShader compiles a GEMM or convolution pipeline in about a second, and these files build the
// same ones: the same small Mask R-CNNs (~110 pipelines a training step) in test/detection, the same
// convolutions and products under the gradient checks of test/autograd. One page compiles them
// once: 629+ s -> 423 s and 118 s -> 77 s. test/kernels stays a page per file: its files compile
// different specialisations on purpose (sharing saved 24 s of 296), and isolation keeps one
// kernel's failure from stopping the others.
const SHARED_PAGE_DIRS = ['test/detection', 'test/autograd'];

const args = process.argv.slice(2);
const option = (name, fallback) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const testTimeout = option('test-timeout', 120_000); // as vitest.config.ts
const runTimeoutS = option('timeout', 1500);
const demoOnly = args.includes('--demo');
const labOnly = args.includes('--lab');
const fileArgs = args.filter((a) => !a.startsWith('--'));

const rel = (p) => path.relative(root, p).split(path.sep).join('/');
const t0 = performance.now();
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;
const counts = { passed: 0, failed: 0, skipped: 0, notRun: 0 };
const skippedFiles = [];

function record(name, status, ms, error) {
  if (status === 'skip') {
    counts.skipped++;
    console.log(`${name}: skipped`);
    return;
  }
  counts[status === 'pass' ? 'passed' : 'failed']++;
  console.log(`${name}: ${status === 'pass' ? 'ok' : 'FAIL'}${ms === undefined ? '' : ` (${ms} ms)`}`);
  if (error) console.log(error.replace(/^/gm, '    '));
}

/** The files named, or every test file in TEST_DIRS. */
export function testFiles(named) {
  if (named.length) return named.map((f) => path.resolve(f));
  const inDir = (abs) => readdirSync(abs, { withFileTypes: true });
  return TEST_DIRS.flatMap((dir) => {
    const abs = path.join(root, dir);
    if (!existsSync(abs)) return [];
    const subdirs = inDir(abs).filter((e) => e.isDirectory()).map((e) => path.join(abs, e.name)).sort();
    return [abs, ...subdirs].flatMap((d) => inDir(d).filter((e) => e.isFile() && e.name.endsWith('.test.ts')).map((e) => path.join(d, e.name)).sort());
  });
}

// ---- bundling

const shim = path.join(root, 'test/browser/vitest-shim.ts');
const pageMain = path.join(root, 'test/browser/page-main.ts');
const setupFile = path.join(root, 'test/setup.ts');
const nodeEntry = path.join(root, 'index.node.ts');
const browserEntry = path.join(root, 'index.ts');
const nodeDawn = path.join(root, 'node-dawn.ts');
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const BUILTIN = new RegExp(`^(node:.*|(${builtinModules.map(escape).join('|')})(/.*)?)$`);

/** Bundles one page entry (test files, in order, or none: init only): { js, map, name } or { skip: reason } or { error }. */
export async function bundle(name, files, testTimeoutMs = testTimeout) {
  const builtins = [];
  const aliases = {
    name: 'browser-test-aliases',
    setup(b) {
      b.onResolve({ filter: /^vitest$/ }, () => ({ path: shim }));
      b.onResolve({ filter: /index\.node(\.js)?$/ }, (a) => (path.resolve(a.resolveDir, a.path.replace(/\.js$/, '.ts')) === nodeEntry ? { path: browserEntry } : undefined));
      // test/setup.ts installs Dawn through node-dawn.ts; in the page, navigator.gpu is the provider
      b.onResolve({ filter: /node-dawn(\.js)?$/ }, (a) => (path.resolve(a.resolveDir, a.path.replace(/\.js$/, '.ts')) === nodeDawn ? { path: nodeDawn, namespace: 'browser-empty' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'browser-empty' }, () => ({ contents: '', loader: 'js' }));
      b.onResolve({ filter: BUILTIN }, (a) => {
        builtins.push(`${a.path} (imported by ${rel(a.importer)})`);
        return { errors: [{ text: `Node built-in ${a.path}` }] };
      });
    },
  };
  const loads = files.map((f) => `[${JSON.stringify(rel(f))}, () => import(${JSON.stringify(setupFile)}).then(() => import(${JSON.stringify(f)}))]`);
  try {
    const out = await build({
      ...webOptions,
      stdin: { contents: `import { runPage } from ${JSON.stringify(pageMain)};\nrunPage([${loads.join(', ')}], ${testTimeoutMs});\n`, resolveDir: root, sourcefile: 'page-entry.js' },
      outfile: path.join(root, '__bundles', `${name}.js`),
      write: false,
      logLevel: 'silent',
      define: { 'process.env': JSON.stringify({ REQUIRE_WEBGPU: '1' }) },
      plugins: [aliases],
    });
    const js = out.outputFiles.find((f) => f.path.endsWith('.js')).text;
    const map = out.outputFiles.find((f) => f.path.endsWith('.map')).text;
    return { name, js, map };
  } catch (e) {
    if (builtins.length) return { skip: `needs Node built-ins: ${[...new Set(builtins)].join(', ')}` };
    return { error: (e.errors ?? []).map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`).join('\n') || String(e) };
  }
}

// ---- serving: the repository read-only, plus the in-memory bundles under /__bundles/

const bundles = new Map();
const serve = () => serveStatic(root, { memory: bundles });

// ---- error stacks: bundle positions -> source positions

const sourceMaps = new Map();
function mapStack(stack) {
  const frames = [];
  for (const m of stack.matchAll(/https?:\/\/[^/]+\/__bundles\/([\w.-]+\.js):(\d+):(\d+)/g)) {
    const sm = sourceMaps.get(m[1]);
    const entry = sm?.findEntry(Number(m[2]) - 1, Number(m[3]) - 1);
    if (!entry?.originalSource) continue;
    const src = rel(path.resolve(root, '__bundles', entry.originalSource.replace(/^file:\/\//, '')));
    if (src === rel(shim) || src === rel(pageMain)) continue; // the runner's own frames
    frames.push(`at ${src}:${entry.originalLine + 1}:${entry.originalColumn + 1}`);
  }
  return frames.slice(0, 4).join('\n');
}
const describeError = (e) => [e.message, mapStack(e.stack)].filter(Boolean).join('\n');

// ---- the browser: relaunched after a timeout or a crash, as its GPU process may still be busy with the stuck work

let browser = null;
const openBrowser = async () => (browser ??= await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }));
async function closeBrowser() {
  const b = browser;
  browser = null;
  await b?.close().catch(() => {});
}

/**
 * Opens the page for one bundle and feeds its events to onEvent until done or fatal. Returns the
 * reason the page is considered wedged (a timeout, a crash, silence), or null.
 */
async function runBundle(base, b, onEvent) {
  bundles.set(`/__bundles/${b.name}.js`, b.js);
  bundles.set(`/__bundles/${b.name}.js.map`, b.map);
  sourceMaps.set(`${b.name}.js`, new SourceMap(JSON.parse(b.map)));
  const page = await (await openBrowser()).newPage();
  let wedged = null;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const stop = (reason) => {
    wedged ??= reason;
    finish();
  };
  let lastEvent = Date.now();
  let running = null;
  let runningTimeout = testTimeout;
  await page.exposeFunction('__report', (e) => {
    if (wedged) return; // what a wedged page says next is not to be trusted
    lastEvent = Date.now();
    if (e.type === 'start') [running, runningTimeout] = [e.path, e.timeout];
    else if (e.type === 'result') [running, runningTimeout] = [null, testTimeout];
    onEvent(e);
    if (e.type === 'done' || e.type === 'fatal') finish();
    if (/\bTimeoutError: /.test(e.error?.message ?? '')) stop(`"${e.path.join(' > ')}" timed out`);
  });
  page.on('console', (m) => console.log(`  [console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => onEvent({ type: 'uncaught', error: { message: `${e.name}: ${e.message}`, stack: e.stack ?? '' } }));
  page.on('crash', () => {
    onEvent({ type: 'fatal', stage: 'crash', error: { message: 'the page crashed', stack: '' } });
    stop('the page crashed');
  });
  // the shim times a test out after its timeout; silence well beyond that means the page is stuck
  const watchdog = setInterval(() => {
    if (Date.now() - lastEvent < runningTimeout + 30_000) return;
    const error = { message: `no word from the page for ${seconds(Date.now() - lastEvent)}`, stack: '' };
    onEvent(running ? { type: 'result', path: running, status: 'fail', error } : { type: 'fatal', stage: 'hang', error });
    stop(`the page stopped answering${running ? ` in "${running.join(' > ')}"` : ''}`);
  }, 1000);
  try {
    await page.goto(`${base}/test/browser/page.html?bundle=/__bundles/${b.name}.js`);
    await finished;
  } catch (e) {
    onEvent({ type: 'fatal', stage: 'load', error: { message: String(e.message ?? e), stack: '' } });
    wedged ??= 'the page did not load';
  } finally {
    clearInterval(watchdog);
    if (wedged) await closeBrowser();
    else await page.close().catch(() => {});
    bundles.delete(`/__bundles/${b.name}.js`);
    bundles.delete(`/__bundles/${b.name}.js.map`);
  }
  return wedged;
}

function printAdapter(info, ms) {
  console.log(`adapter: ${info.vendor || '?'} / ${info.architecture || '?'}${info.description ? ` (${info.description})` : ''}, fallback: ${info.isFallbackAdapter}, device in ${ms} ms`);
  console.log(`limits: ${Object.entries(info.limits).map(([k, v]) => `${k}=${v}`).join(', ')}`);
  console.log(`features: ${info.features.join(', ') || '(none)'}`);
}

/** The pages to open: one per file, and one for the top-level files of each SHARED_PAGE_DIRS folder. */
function pagesOf(files) {
  const pages = [];
  const shared = new Map();
  for (const f of files) {
    const dir = rel(path.dirname(f));
    if (!SHARED_PAGE_DIRS.includes(dir)) pages.push([f]);
    else if (shared.has(dir)) shared.get(dir).push(f);
    else {
      shared.set(dir, [f]);
      pages.push(shared.get(dir));
    }
  }
  return pages;
}

async function runPageOf(base, files) {
  // each file is bundled alone first: a skip or a bundling error is its own, not its page's
  const runnable = [];
  for (const file of files) {
    const name = rel(file);
    const b = await bundle(name.replace(/[^\w.-]/g, '_'), [file]);
    if (b.skip) {
      skippedFiles.push(`${name}: ${b.skip}`);
      console.log(`${name}: skipped by design (${b.skip})`);
    } else if (b.error) record(`${name}: browser bundle`, 'fail', undefined, b.error);
    else runnable.push({ file, name, b });
  }
  if (!runnable.length) return;
  const title = runnable.map((r) => r.name).join(', ');
  const b = runnable.length === 1 ? runnable[0].b : await bundle(`shared-${rel(path.dirname(files[0])).replace(/[^\w.-]/g, '_')}`, runnable.map((r) => r.file));
  if (b.error) return record(`${title}: browser bundle`, 'fail', undefined, b.error);
  const started = performance.now();
  const pending = new Map();
  // a file's time: from its first test's start to the start of the next file's first test
  const fileTimes = [];
  const label = (p) => p.join(' > ');
  const wedged = await runBundle(base, b, (e) => {
    if (e.type === 'collected') for (const p of e.paths) pending.set(label(p), p);
    else if (e.type === 'start' && fileTimes.at(-1)?.[0] !== e.path[0]) fileTimes.push([e.path[0], performance.now()]);
    else if (e.type === 'result') {
      pending.delete(label(e.path));
      record(label(e.path), e.status, e.ms, e.error && describeError(e.error));
    } else if (e.type === 'fatal') record(`${e.file ?? title} (${e.stage})`, 'fail', undefined, describeError(e.error));
    else if (e.type === 'uncaught') record(`${title} (uncaught error)`, 'fail', undefined, describeError(e.error));
  });
  if (wedged) {
    console.log(`${title}: ${wedged}; the browser is restarted and the rest of this page is not run`);
    counts.notRun += pending.size;
    for (const l of pending.keys()) console.log(`${l}: not run`);
  }
  if (runnable.length > 1) {
    fileTimes.forEach(([name, t], i) => console.log(`${name}: ${seconds((fileTimes[i + 1]?.[1] ?? performance.now()) - t)}`));
    console.log(`(one page: ${title}): ${seconds(performance.now() - started)}`);
  } else console.log(`${title}: ${seconds(performance.now() - started)}`);
}

// The colours of the demo's result cells (demo/smoke.html: td.ok, td.fail)
const OK_RGB = [0x13, 0x73, 0x33];
const FAIL_RGB = [0xc5, 0x22, 0x1f];

/** Pixels of the decoded PNG inside box (CSS pixels, device scale 1) within 8 per channel of rgb. */
function countColour(png, box, rgb) {
  let n = 0;
  const x1 = Math.min(png.width, Math.ceil(box.x + box.w)), y1 = Math.min(png.height, Math.ceil(box.y + box.h));
  for (let y = Math.max(0, Math.floor(box.y)); y < y1; y++) {
    for (let x = Math.max(0, Math.floor(box.x)); x < x1; x++) {
      const i = (y * png.width + x) * png.channels;
      if (rgb.every((c, k) => Math.abs(png.data[i + k] - c) <= 8)) n++;
    }
  }
  return n;
}

/**
 * Loads demo/smoke.html, saves a full-page screenshot, and checks both what the page reports (the
 * adapter, an ok on every row) and what the screenshot shows: each row's result cell in the ok
 * colour, none in the fail colour.
 */
async function runDemo(base, info) {
  const page = await (await openBrowser()).newPage({ viewport: { width: 1100, height: 800 }, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${e.name}: ${e.message}`));
  const started = performance.now();
  try {
    await page.goto(`${base}/demo/smoke.html`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status ?? ''), null, { timeout: DEMO_TIMEOUT_MS });
  } catch (e) {
    errors.push(String(e.message ?? e).split('\n')[0]);
  }
  const shot = path.join(tmpdir(), `longtail-webgpu-demo-${process.pid}.png`);
  let png = null;
  try {
    // a screenshot needs the GPU process, which a stuck shader compile keeps busy
    png = decodePng(await page.screenshot({ path: shot, fullPage: true, timeout: 30_000 }));
    console.log(`demo screenshot: ${shot} (${png.width}x${png.height})`);
  } catch (e) {
    errors.push(`no screenshot: ${String(e.message ?? e).split('\n')[0]}`);
  }
  const text = await page.innerText('body');
  const status = await page.evaluate(() => document.body.dataset.status);
  if (status !== 'done') errors.push(`page status "${status}": ${await page.innerText('#status')}`);
  const adapterShown = [info.vendor, info.architecture].filter(Boolean).every((s) => text.includes(s));
  record('demo > shows the adapter', adapterShown ? 'pass' : 'fail', undefined, adapterShown ? undefined : `page text lacks "${info.vendor}" / "${info.architecture}"`);
  const rows = await page.$$eval('tr[data-row]', (trs) =>
    trs.map((tr) => {
      const cell = tr.querySelector('.status');
      const r = cell?.getBoundingClientRect() ?? { x: 0, y: 0, width: 0, height: 0 };
      return { name: tr.dataset.row, status: cell?.textContent?.trim(), text: tr.innerText, box: { x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height } };
    }),
  );
  const ms = Math.round(performance.now() - started);
  record('demo > finished without errors', errors.length || !rows.length ? 'fail' : 'pass', ms, errors.join('\n') || (rows.length ? undefined : 'no result rows'));
  for (const r of rows) {
    const problems = [];
    if (r.status !== 'ok') problems.push(r.text.replace(/\t/g, ' | '));
    if (png) {
      const ok = countColour(png, r.box, OK_RGB), fail = countColour(png, r.box, FAIL_RGB);
      // a rendered "ok" in 14px bold covers dozens of pixels in full colour
      if (ok < 10 || fail > 0) problems.push(`the screenshot's result cell has ${ok} ok-coloured and ${fail} fail-coloured pixels`);
    }
    record(`demo > ${r.name}`, problems.length ? 'fail' : 'pass', undefined, problems.join('\n') || undefined);
  }
  await page.close().catch(() => {});
}

async function main() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM=/path)`);
  await buildWeb();
  const server = await serve();
  const base = `http://127.0.0.1:${server.address().port}`;
  const timer = setTimeout(() => {
    console.log(`the whole run exceeded ${runTimeoutS} s: stopping`);
    console.log(`elapsed: ${seconds(performance.now() - t0)}`);
    console.log(`${counts.passed} passed, ${counts.failed + 1} failed`);
    process.exit(1);
  }, runTimeoutS * 1000);
  try {
    console.log(`chromium ${(await openBrowser()).version()}, ${CHROMIUM_ARGS.join(' ')}`);
    // one empty page first: no adapter means nothing else can run
    let info = null;
    await runBundle(base, await bundle('adapter', []), (e) => {
      if (e.type === 'adapter') {
        info = e.info;
        printAdapter(e.info, e.ms);
      } else if (e.type === 'fatal') record('WebGPU adapter in Chromium', 'fail', undefined, e.error.message);
    });
    if (info && !demoOnly && !labOnly) {
      const files = testFiles(fileArgs);
      if (!files.length) console.log(`no test files in ${TEST_DIRS.join(', ')}`);
      for (const page of pagesOf(files)) await runPageOf(base, page);
    }
    if (info && !labOnly && (demoOnly || !fileArgs.length)) await runDemo(base, info);
    if (info && (demoOnly || labOnly || !fileArgs.length)) await runLab({ root, base, browser: await openBrowser(), record, countColour });
  } finally {
    clearTimeout(timer);
    await closeBrowser();
    server.close();
  }
  if (skippedFiles.length) console.log(`skipped by design: ${skippedFiles.length} file(s)\n  ${skippedFiles.join('\n  ')}`);
  if (counts.skipped) console.log(`${counts.skipped} test(s) marked skip`);
  if (counts.notRun) console.log(`${counts.notRun} test(s) not run: they came after a timeout in their page`);
  console.log(`elapsed: ${seconds(performance.now() - t0)}`);
  console.log(`${counts.passed} passed, ${counts.failed} failed`);
  return counts.failed || !counts.passed ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      console.log(`elapsed: ${seconds(performance.now() - t0)}`);
      console.log(`${counts.passed} passed, ${counts.failed + 1} failed`);
      process.exit(1);
    },
  );
}
