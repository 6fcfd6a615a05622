// The long-tail lab (demo/index.html): a stage-1 CIFAR-10-LT model shipped in assets/demo/, its
// class counts and per-class accuracy; every calibration of the library run on WebGPU in the page,
// with progress and loss curves; the results table, per-class accuracy before/after, a confusion
// matrix and a reliability diagram; sliders for ρ, τ and λ; a dropped features file; and one test
// image through the ResNet-8 backbone. The computations are lab-core.ts, shared with Node's check.
// Without WebGPU the page says so and offers the CPU reference backend; it never stays blank.

import { backend, device, init } from '../kernels/device.js';
import { tensor } from '../kernels/creation.js';
import { keep, scope, type Tensor } from '../kernels/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { softmax } from '../autograd/ops.js';
import { CifarResNet } from '../nn/resnet.js';
import { loadSafetensors } from '../nn/safetensors.js';
import { decodeImage } from '../data/decode.js';
import { CIFAR_MEAN, CIFAR_STD, normalizeInto } from '../data/augment.js';
import { formatPercent } from '../longtail/metrics.js';
import type { CalibrationName, Head } from '../longtail/calibration.js';
import { bars, drawConfusion, lossCurve, pairedBars, reliabilityDiagram, SPLIT_COLOURS } from './charts.js';
import { classSplits, DEFAULT_PARAMS, evaluateHead, LAB_METHODS, parseFeaturesFile, runCalibration, stage1Head, trainTensor, type LabData, type LabParams, type LabResult } from './lab-core.js';

// the bundle is demo/dist/lab.js: the repository root is two folders up
const ASSETS = new URL('../../assets/', import.meta.url);
const SHIPPED_FEATURES = 'demo/cifar10-lt-mini.features.safetensors';
const SHIPPED_BACKBONE = 'demo/cifar10-lt-mini.resnet8.safetensors';
const IMAGES = 'cifar10-lt-mini/';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const setStatus = (s: string): void => void ($('status').textContent = s);

/** Everything the page holds for the current features (shipped, or dropped by the user). */
interface Lab {
  data: LabData;
  features: Tensor;
  head: Head;
  stage1: LabResult;
  results: Map<CalibrationName, LabResult & { ms: number }>;
  /** The method the comparison charts show. */
  shown: CalibrationName | null;
  /** The ResNet-8 backbone: only for the shipped model. */
  backbone: CifarResNet | null;
}

let lab: Lab | null = null;
const params: LabParams = { ...DEFAULT_PARAMS };
/** Calibrations run one at a time: a slider moved during a run queues its method once. */
let busy: Promise<unknown> = Promise.resolve();
const queued = new Set<CalibrationName>();

// ---------------------------------------------------------------- start

function showAdapter(): void {
  const dl = $('adapter');
  const rows: [string, string][] = [];
  if (backend() === 'webgpu') {
    const info = device().info;
    rows.push(['backend', 'WebGPU'], ['vendor', info.vendor || '-'], ['architecture', info.architecture || '-'], ['description', info.description || '-'], ['fallback adapter', String(info.isFallbackAdapter)], ['features', info.features.join(', ') || 'none']);
  } else rows.push(['backend', 'CPU reference (float64, slow)']);
  dl.innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('');
}

function banner(kind: 'warn' | 'error', html: string): HTMLElement {
  const div = document.createElement('div');
  div.className = `banner ${kind}`;
  div.innerHTML = html;
  $('banner').append(div);
  return div;
}

async function start(): Promise<void> {
  const forcedCpu = new URLSearchParams(location.search).get('backend') === 'cpu';
  if (!forcedCpu && !(navigator as { gpu?: unknown }).gpu) {
    document.body.dataset.status = 'no-webgpu';
    setStatus('This browser offers no WebGPU.');
    const b = banner('warn', `<b>WebGPU is not available here</b> (no <code>navigator.gpu</code>, or no adapter). In Chrome it is on by default on Windows, macOS and ChromeOS; on Linux start Chrome with <code>--enable-unsafe-webgpu</code> (and <code>--enable-features=Vulkan</code> for a hardware adapter). <button id="use-cpu">Use the CPU backend instead</button> (float64, slow: learned methods take minutes).`);
    b.querySelector('button')!.addEventListener('click', () => void (location.search = '?backend=cpu'));
    return;
  }
  await init(forcedCpu ? { backend: 'cpu' } : {});
  if (!forcedCpu && backend() === 'cpu') banner('warn', 'WebGPU found no adapter: running on the CPU reference backend (float64, slow).');
  showAdapter();
  setStatus('Loading the stage-1 model…');
  const [featBytes, backboneBytes] = await Promise.all([fetchBytes(SHIPPED_FEATURES), fetchBytes(SHIPPED_BACKBONE)]);
  await useData(parseFeaturesFile(featBytes, SHIPPED_FEATURES), backboneBytes);
  setupControls();
  await showThumbs();
  document.body.dataset.status = 'ready';
  setStatus('Ready: run a calibration.');
}

async function fetchBytes(path: string): Promise<Uint8Array> {
  const res = await fetch(new URL(path, ASSETS));
  if (!res.ok) throw new Error(`cannot load ${path}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Replaces the lab's data: its stage-1 head (from the file, or trained here), charts and an empty table. */
async function useData(data: LabData, backboneBytes: Uint8Array | null): Promise<void> {
  if (lab) lab.features.dispose();
  const features = trainTensor(data);
  setStatus(data.weight ? 'Evaluating the stage-1 classifier…' : `${data.headNote ? `The file's classifier is not linear (${data.headNote})` : 'The file has no classifier'}: training a linear head on the features (instance-balanced)…`);
  const { head, trained } = await stage1Head(data, features, params.seed, (e, n, loss) => progress('stage-1 head', e, n, loss));
  const stage1 = await evaluateHead(data, head);
  let backbone: CifarResNet | null = null;
  if (backboneBytes) {
    backbone = new CifarResNet([1, 1, 1], { numClasses: data.numClasses });
    scope(() => backbone!.loadStateDict(loadSafetensors(backboneBytes).tensors, { strict: false }));
    backbone.eval();
  }
  lab = { data, features, head, stage1, results: new Map(), shown: null, backbone };
  const n = data.train.labels.length;
  $('model-info').textContent = `${data.source}: ${n.toLocaleString('en-US')} training and ${data.test.labels.length.toLocaleString('en-US')} test feature vectors of ${data.dim} values, ${data.numClasses} classes (${Math.max(...data.counts)} down to ${Math.min(...data.counts)} training images). ` +
    `Stage-1 classifier: ${trained ? `a linear head trained here on the features${data.headNote ? ` (${data.headNote})` : ''}` : 'the one in the file'}; top-1 ${formatPercent(stage1.evaluation.top1)}%.` +
    (data.testIsTrain ? ' The file has no test split: the training features stand in for it.' : '');
  drawModel();
  renderTable();
  renderComparison();
}

// ---------------------------------------------------------------- charts

function splitColours(d: LabData): string[] {
  return classSplits(d).map((s) => SPLIT_COLOURS[s]);
}

function drawModel(): void {
  const { data, stage1 } = lab!;
  const colours = splitColours(data);
  $('counts-chart').innerHTML = bars({ values: data.counts, names: data.classNames, colours, log: true, label: 'training images per class', unit: ' images' });
  $('split-legend').innerHTML = (['many', 'medium', 'few'] as const).map((s) => `<span style="background:${SPLIT_COLOURS[s]}"></span>${s}`).join('');
  $('stage1-chart').innerHTML = bars({ values: stage1.evaluation.perClass, names: data.classNames, colours, max: 1, label: 'stage-1 per-class accuracy', unit: '' });
}

function progress(name: string, epoch: number, epochs: number, loss: number, losses?: readonly number[]): void {
  $('train-name').textContent = name;
  const bar = $<HTMLProgressElement>('progress');
  bar.max = epochs;
  bar.value = epoch + 1;
  $('progress-text').textContent = `epoch ${epoch + 1} of ${epochs}, loss ${loss.toFixed(4)}`;
  if (losses) $('loss-chart').innerHTML = lossCurve(losses, epochs, `${name} loss`);
}

const rowCells = (label: string, r: LabResult, ms?: number): string => {
  const e = r.evaluation;
  return `<td>${label}</td><td data-col="average">${formatPercent(e.top1)}</td><td data-col="many">${formatPercent(e.many)}</td><td data-col="medium">${formatPercent(e.medium)}</td><td data-col="few">${formatPercent(e.few)}</td><td>${(100 * r.reliability.ece).toFixed(1)}</td><td>${ms === undefined ? '' : `${(ms / 1000).toFixed(1)} s`}</td>`;
};

function renderTable(): void {
  const { stage1, results, shown } = lab!;
  const rows = [`<tr data-method="stage1"${shown === null ? ' class="selected"' : ''}>${rowCells('Stage 1 (no calibration)', stage1)}</tr>`];
  for (const m of LAB_METHODS) {
    const r = results.get(m.id);
    if (r) rows.push(`<tr data-method="${m.id}"${shown === m.id ? ' class="selected"' : ''}>${rowCells(labelOf(m.id), r, r.ms)}</tr>`);
  }
  const body = $('results').querySelector('tbody')!;
  body.innerHTML = rows.join('');
  for (const tr of body.querySelectorAll<HTMLTableRowElement>('tr[data-method]')) {
    tr.addEventListener('click', () => {
      const m = tr.dataset.method!;
      lab!.shown = m === 'stage1' ? null : (m as CalibrationName);
      renderTable();
      renderComparison();
    });
  }
}

function labelOf(id: CalibrationName): string {
  const base = LAB_METHODS.find((m) => m.id === id)!.label;
  if (id === 'taunorm') return `${base} (τ = ${params.tau.toFixed(1)})`;
  if (id === 'logitadjust') return `${base} (λ = ${params.lambda.toFixed(1)})`;
  if (id === 'disalign') return `${base} (ρ = ${params.rho.toFixed(1)})`;
  return base;
}

function renderComparison(): void {
  const { data, stage1, results, shown } = lab!;
  const r = shown ? results.get(shown)! : stage1;
  const name = shown ? labelOf(shown) : 'stage 1';
  for (const id of ['compare-name', 'confusion-name', 'reliability-name']) $(id).textContent = name;
  $('compare-chart').innerHTML = pairedBars(stage1.evaluation.perClass, r.evaluation.perClass, data.classNames, splitColours(data), `per-class accuracy, stage 1 and ${name}`);
  drawConfusion($<HTMLCanvasElement>('confusion'), r.confusion, data.classNames);
  $('reliability-chart').innerHTML = reliabilityDiagram(r.reliability.bins, r.reliability.ece, `reliability of ${name}`);
}

// ---------------------------------------------------------------- running methods

function setButtons(disabled: boolean): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>('#method-buttons button, #run-all')) b.disabled = disabled;
}

/** Runs one method (queued behind any running one) and shows it. */
function run(id: CalibrationName): Promise<unknown> {
  if (queued.has(id)) return busy;
  queued.add(id);
  busy = busy.then(async () => {
    queued.delete(id);
    const current = lab!;
    setButtons(true);
    document.body.dataset.status = 'running';
    setStatus(`Running ${labelOf(id)}…`);
    const losses: number[] = [];
    const t0 = performance.now();
    try {
      const learned = LAB_METHODS.find((m) => m.id === id)!.learned;
      if (!learned) progress(labelOf(id), 0, 1, NaN);
      const r = await runCalibration(current.data, current.features, current.head, id, params, (e, n, loss) => {
        losses.push(loss);
        progress(labelOf(id), e, n, loss, losses);
      });
      if (lab !== current) return; // a new file arrived meanwhile
      current.results.set(id, { ...r, ms: performance.now() - t0 });
      current.shown = id;
      renderTable();
      renderComparison();
      setStatus(`${labelOf(id)}: average ${formatPercent(r.evaluation.top1)}%, few ${formatPercent(r.evaluation.few)}% (${((performance.now() - t0) / 1000).toFixed(1)} s).`);
    } catch (e) {
      banner('error', `${labelOf(id)} failed: ${(e as Error).message}`);
      setStatus(`${labelOf(id)} failed.`);
    } finally {
      setButtons(false);
      document.body.dataset.status = 'ready';
    }
  });
  return busy;
}

function setupControls(): void {
  $('method-buttons').innerHTML = LAB_METHODS.map((m) => `<button data-run="${m.id}">${m.label}</button>`).join('');
  for (const b of document.querySelectorAll<HTMLButtonElement>('#method-buttons button')) b.addEventListener('click', () => void run(b.dataset.run as CalibrationName));
  $('run-all').addEventListener('click', () => {
    for (const m of LAB_METHODS) void run(m.id);
  });
  // a slider re-runs its method when released (τ and λ are post-hoc and instant; ρ retrains DisAlign)
  const sliders: [keyof LabParams, CalibrationName][] = [['rho', 'disalign'], ['tau', 'taunorm'], ['lambda', 'logitadjust']];
  for (const [key, method] of sliders) {
    const input = $<HTMLInputElement>(key), out = $(`${key}-value`);
    input.value = String(params[key]);
    out.textContent = params[key].toFixed(1);
    input.addEventListener('input', () => void (out.textContent = Number(input.value).toFixed(1)));
    input.addEventListener('change', () => {
      params[key] = Number(input.value);
      void run(method);
    });
  }
  const drop = $('drop');
  const take = async (file: File | undefined): Promise<void> => {
    if (!file) return;
    try {
      const data = parseFeaturesFile(new Uint8Array(await file.arrayBuffer()), file.name);
      await busy;
      await useData(data, null);
      $('file-info').textContent = `Calibrating ${file.name} with DisAlign…`;
      $('image-info').textContent = 'One image needs the shipped backbone: reload the page to return to it.';
      $('thumbs').innerHTML = '';
      $('image-result').innerHTML = '';
      await run('disalign');
      $('file-info').textContent = `${file.name}: calibrated with DisAlign; run the other methods with their buttons, or all of them.`;
    } catch (e) {
      $('file-info').textContent = '';
      banner('error', (e as Error).message);
    }
  };
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void take(e.dataTransfer?.files[0]);
  });
  $<HTMLInputElement>('file').addEventListener('change', (e) => void take((e.target as HTMLInputElement).files?.[0]));
}

// ---------------------------------------------------------------- one image

async function showThumbs(): Promise<void> {
  const list = await (await fetch(new URL(`${IMAGES}test.txt`, ASSETS))).text();
  const perClass = new Map<number, string[]>();
  for (const line of list.split('\n')) {
    const [path, label] = line.trim().split(/\s+/);
    if (!path) continue;
    const picked = perClass.get(Number(label)) ?? [];
    if (picked.length < 2) perClass.set(Number(label), [...picked, path]);
  }
  const thumbs = $('thumbs');
  for (const [label, paths] of [...perClass].sort((a, b) => a[0] - b[0])) {
    for (const p of paths) {
      const img = document.createElement('img');
      img.src = new URL(`${IMAGES}${p}`, ASSETS).href;
      img.alt = img.title = `${lab!.data.classNames[label]} (${p})`;
      img.addEventListener('click', () => void classifyImage(img, p, label));
      thumbs.append(img);
    }
  }
}

async function classifyImage(img: HTMLImageElement, path: string, label: number): Promise<void> {
  const current = lab!;
  if (!current.backbone) return;
  for (const t of document.querySelectorAll('.thumbs img')) t.classList.toggle('picked', t === img);
  const bytes = new Uint8Array(await (await fetch(new URL(`${IMAGES}${path}`, ASSETS))).arrayBuffer());
  const image = decodeImage(bytes, path);
  const x = new Float32Array(3 * image.height * image.width);
  normalizeInto(image, CIFAR_MEAN, CIFAR_STD, x);
  const shown = current.shown;
  const calibrated = shown ? current.results.get(shown) : null;
  const feats = noGrad(() => scope(() => keep(current.backbone!.features(tensor(x, [1, 3, image.height, image.width])))));
  const probs = async (logits: Tensor): Promise<Float64Array> => {
    const p = noGrad(() => scope(() => keep(softmax(logits))));
    const v = Float64Array.from(await p.data());
    p.dispose();
    return v;
  };
  const before = await probs(noGrad(() => current.head.forward(feats)));
  // a calibration is a function of the features: the chosen one runs on this image's features
  const after = calibrated ? await probs(calibrated.logits(feats)) : null;
  feats.dispose();
  const top5 = (p: Float64Array): string => [...p].map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0]).slice(0, 5)
    .map(([v, c]) => `<tr${c === label ? ' style="font-weight:600"' : ''}><td>${current.data.classNames[c]}</td><td>${(100 * v).toFixed(1)}%</td></tr>`).join('');
  $('image-result').innerHTML = `<div class="card"><h3>${current.data.classNames[label]} (true class in bold)</h3><img src="${img.src}" width="96" height="96" style="image-rendering:pixelated"></div>` +
    `<div class="card"><h3>Stage 1</h3><table class="top5">${top5(before)}</table></div>` +
    (after ? `<div class="card"><h3>${labelOf(shown!)}</h3><table class="top5">${top5(after)}</table></div>` : '<div class="card muted">Run and select a calibration to see its top 5 too.</div>');
}

start().catch((e: unknown) => {
  document.body.dataset.status = 'error';
  setStatus('The lab could not start.');
  banner('error', (e as Error).message ?? String(e));
  console.error(e);
});
