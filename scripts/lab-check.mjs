// The long-tail lab's end-to-end check (part of `npm run test:browser`): drives demo/index.html as a
// person would and compares what it shows with the same library code run in Node under Dawn.
//   1. the page loads the shipped model; DisAlign is run with its button; the Many / Medium / Few
//      shown must equal lab-core's numbers in Node (same features, same seed) within 0.5 points;
//   2. the screenshot shows the class-count bars in the three split colours;
//   3. the ρ slider, moved with the keyboard (Home: ρ = 0), re-runs DisAlign and changes its row;
//   4. a file that is not a features file is named in a one-line error; a features file made here
//      (no classifier in it) is given to the file input: the page trains a stage-1 head and
//      calibrates it with DisAlign.
import { build } from 'esbuild';
import { decode as decodePng } from 'fast-png';
import { readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const LAB_TIMEOUT_MS = 600_000;
/** The split colours of demo/charts.ts. */
const SPLIT_RGB = { many: [0x3b, 0x6f, 0xb6], medium: [0xe0, 0x8a, 0x1e], few: [0xc0, 0x39, 0x2b] };

/** lab-core.ts and what a check needs, bundled for Node with Dawn installed (the library's own code, not a copy). */
async function loadLabCore(root) {
  const out = await build({
    stdin: {
      contents: "import './node-dawn.ts';\nexport * from './demo/lab-core.ts';\nexport { init } from './kernels/device.ts';\nexport { encodeSafetensors } from './nn/safetensors.ts';\n",
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    write: false,
    logLevel: 'silent',
  });
  // inside node_modules so that the bundle's external imports (webgpu) resolve from the repository
  const file = path.join(root, 'node_modules', `.lab-check-${process.pid}.mjs`);
  await writeFile(file, out.outputFiles[0].text);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    await rm(file, { force: true });
  }
}

/** A small long-tailed features file: Gaussian clusters in 8-d, 5 classes of 150 … 4 samples, a test split, no classifier. */
function syntheticFeatures(lab) {
  const C = 5, D = 8, counts = [150, 60, 25, 10, 4], perTest = 20;
  let s = 12345;
  const uniform = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const centres = Array.from({ length: C }, () => Array.from({ length: D }, () => 1.5 * normal()));
  const draw = (n, c, feats, labels) => {
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < D; d++) feats.push(centres[c][d] + normal());
      labels.push(c);
    }
  };
  const tf = [], tl = [], vf = [], vl = [];
  counts.forEach((n, c) => draw(n, c, tf, tl));
  for (let c = 0; c < C; c++) draw(perTest, c, vf, vl);
  const bytes = lab.encodeSafetensors([
    ['features', { dtype: 'F32', shape: [tl.length, D], data: Float32Array.from(tf) }],
    ['labels', { dtype: 'I32', shape: [tl.length], data: Int32Array.from(tl) }],
    ['counts', { dtype: 'I32', shape: [C], data: Int32Array.from(counts) }],
    ['test_features', { dtype: 'F32', shape: [vl.length, D], data: Float32Array.from(vf) }],
    ['test_labels', { dtype: 'I32', shape: [vl.length], data: Int32Array.from(vl) }],
  ], { class_names: JSON.stringify(['alpha', 'beta', 'gamma', 'delta', 'epsilon']) });
  return Buffer.from(bytes);
}

/** The row of the results table for `method`, as numbers (percent) per column. */
const readRow = (page, method) => page.$eval(`tr[data-method="${method}"]`, (tr) => ({
  label: tr.cells[0].textContent,
  ...Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map((td) => [td.dataset.col, Number(td.textContent)])),
}));

const waitReady = (page) => page.waitForFunction(() => document.body.dataset.status === 'ready', null, { timeout: LAB_TIMEOUT_MS });

/**
 * Runs the lab's checks, reporting each through `record(name, 'pass'|'fail', ms, error)`. `countColour`
 * counts a colour's pixels in a screenshot box.
 */
export async function runLab({ root, base, browser, record, countColour }) {
  const lab = await loadLabCore(root);
  await lab.init({ requireWebGPU: true });
  const page = await browser.newPage({ viewport: { width: 1160, height: 900 }, deviceScaleFactor: 1 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${e.name}: ${e.message}`));
  const step = async (name, fn) => {
    const t0 = performance.now();
    try {
      const problem = await fn();
      record(`lab > ${name}`, problem ? 'fail' : 'pass', Math.round(performance.now() - t0), problem || undefined);
    } catch (e) {
      record(`lab > ${name}`, 'fail', Math.round(performance.now() - t0), String(e.message ?? e).split('\n')[0]);
    }
  };
  try {
    await step('loads the shipped stage-1 model', async () => {
      await page.goto(`${base}/demo/index.html`);
      await waitReady(page);
      const banner = await page.innerText('#banner');
      return errors.length || banner.includes('failed') ? `${errors.join('; ')} ${banner}` : null;
    });

    // 1. DisAlign in the page against lab-core in Node, on the same file
    let first = null;
    await step('DisAlign: Many / Medium / Few equal the Node API within 0.5 points', async () => {
      const t0 = performance.now();
      await page.click('button[data-run="disalign"]');
      await page.waitForSelector('tr[data-method="disalign"]', { timeout: LAB_TIMEOUT_MS });
      await waitReady(page);
      first = await readRow(page, 'disalign');
      console.log(`lab: DisAlign in the page took ${((performance.now() - t0) / 1000).toFixed(1)} s: ${JSON.stringify(first)}`);
      const data = lab.parseFeaturesFile(new Uint8Array(await readFile(path.join(root, 'assets/demo/cifar10-lt-mini.features.safetensors'))), 'shipped');
      const features = lab.trainTensor(data);
      const { head } = await lab.stage1Head(data, features);
      const node = (await lab.runCalibration(data, features, head, 'disalign', lab.DEFAULT_PARAMS)).evaluation;
      features.dispose();
      const want = { many: 100 * node.many, medium: 100 * node.medium, few: 100 * node.few };
      console.log(`lab: DisAlign in Node: ${JSON.stringify(want)}`);
      const off = Object.entries(want).filter(([k, v]) => !(Math.abs(first[k] - v) <= 0.5));
      return off.length ? `page ${JSON.stringify(first)} vs Node ${JSON.stringify(want)}` : null;
    });

    // 2. the screenshot, of DisAlign at the default ρ (before the slider and the file change the page)
    await step('the screenshot shows the class counts in the split colours', async () => {
      const png = decodePng(await page.screenshot({ path: path.join(tmpdir(), `longtail-webgpu-lab-${process.pid}.png`), fullPage: true, timeout: 60_000 }));
      const box = await page.$eval('#counts-chart svg', (el) => {
        const r = el.getBoundingClientRect();
        return { x: r.x + scrollX, y: r.y + scrollY, w: r.width, h: r.height };
      });
      const seen = Object.fromEntries(Object.entries(SPLIT_RGB).map(([k, rgb]) => [k, countColour(png, box, rgb)]));
      console.log(`lab screenshot: ${path.join(tmpdir(), `longtail-webgpu-lab-${process.pid}.png`)}, split-coloured pixels in the counts chart ${JSON.stringify(seen)}`);
      return Object.values(seen).every((n) => n >= 20) ? null : `too few split-coloured pixels: ${JSON.stringify(seen)}`;
    });

    // 3. the ρ slider, with the keyboard as a person would: Home takes it from 1.2 to 0 (one change event)
    await step('moving the ρ slider re-runs DisAlign and changes the table', async () => {
      await page.focus('#rho');
      await page.keyboard.press('Home');
      await page.waitForFunction(() => document.querySelector('tr[data-method="disalign"] td')?.textContent?.includes('ρ = 0.0'), null, { timeout: LAB_TIMEOUT_MS });
      await waitReady(page);
      const moved = await readRow(page, 'disalign');
      console.log(`lab: DisAlign at ρ = 0: ${JSON.stringify(moved)}`);
      return ['average', 'many', 'medium', 'few'].some((k) => moved[k] !== first?.[k]) ? null : `the row did not change: ${JSON.stringify(moved)}`;
    });

    // 4. a features file of the user's own: first one that is not, which must be named in a clear error
    await step('a file that is not a features file gets a clear error naming it', async () => {
      await page.setInputFiles('#file', { name: 'notes.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not a safetensors file at all') });
      await page.waitForSelector('.banner.error', { timeout: 60_000 });
      const text = await page.innerText('.banner.error');
      await page.$eval('#banner', (b) => void (b.innerHTML = ''));
      return /^notes\.safetensors: not a safetensors file/.test(text) ? null : `banner: ${text}`;
    });
    await step('a dropped features file is calibrated', async () => {
      const t0 = performance.now();
      await page.setInputFiles('#file', { name: 'my-features.safetensors', mimeType: 'application/octet-stream', buffer: syntheticFeatures(lab) });
      await page.waitForFunction(() => /calibrated with DisAlign/.test(document.getElementById('file-info')?.textContent ?? '') || document.querySelector('.banner.error'), null, { timeout: LAB_TIMEOUT_MS });
      console.log(`lab: the dropped file, its stage-1 head and DisAlign: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const problems = [];
      const banner = await page.innerText('#banner');
      if (/failed|my-features/.test(banner)) problems.push(banner);
      const info = await page.innerText('#model-info');
      if (!info.includes('my-features.safetensors') || !info.includes('5 classes')) problems.push(`model info: ${info}`);
      const disalign = await readRow(page, 'disalign');
      if (!(disalign.average > 20)) problems.push(`DisAlign average ${disalign.average}% on well-separated clusters`);
      return problems.join('\n') || null;
    });
    if (errors.length) record('lab > no page errors', 'fail', undefined, errors.join('\n'));
  } finally {
    await page.close().catch(() => {});
  }
}
