// The browser smoke demo (demo/smoke.html): shows the WebGPU adapter, then runs matmul and the fused
// softmax-KL on the GPU and the same ops on the CPU reference backend (float64), and prints both
// with the max abs error and ok/FAIL. scripts/test-browser.mjs loads it and checks every row.
import { init, device, tensor, matmul, softmaxKL, unary, binary, type Backend, type DeviceInfo, type Tensor } from '../kernels/index.js';

type Make = (values: ArrayLike<number>, shape: number[], dtype?: 'f32' | 'i32') => Tensor;

interface Case {
  op: string;
  shape: string;
  /** Relative to max(1, max |reference|): float32 against the float64 reference. */
  tol: number;
  /** Builds the op's outputs from inputs made by `make` (on one backend). */
  run: (make: Make) => Record<string, Tensor>;
}

// mulberry32: deterministic inputs, so a failure can be reproduced by reloading the page
let seed = 0x2545f491;
function uniform(n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let t = (seed = (seed + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

function probsRows(n: number, c: number): Float32Array {
  const p = uniform(n * c, 0, 1);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += p[i * c + j];
    for (let j = 0; j < c; j++) p[i * c + j] /= s;
  }
  return p;
}

const a = uniform(37 * 53), b = uniform(53 * 29), bt = uniform(33 * 53);
const logits = uniform(19 * 10, -4, 4);
const labels = Int32Array.from(uniform(19, 0, 10), Math.floor);
const weights = uniform(10, 0.2, 3);
const probs = probsRows(19, 10);
const x = uniform(6 * 7, -3, 3), y = uniform(7);

const CASES: Case[] = [
  { op: 'matmul', shape: '[37,53] · [53,29]', tol: 1e-4, run: (m) => ({ '': matmul(m(a, [37, 53]), m(b, [53, 29])) }) },
  { op: 'matmul transB', shape: '[37,53] · [33,53]ᵀ', tol: 1e-4, run: (m) => ({ '': matmul(m(a, [37, 53]), m(bt, [33, 53]), { transB: true }) }) },
  {
    op: 'softmaxKL labels+weights',
    shape: 'z [19,10]',
    tol: 1e-5,
    run: (m) => softmaxKL(m(logits, [19, 10]), { labels: m(labels, [19], 'i32'), weights: m(weights, [10]) }),
  },
  { op: 'softmaxKL probs', shape: 'z [19,10]', tol: 1e-5, run: (m) => softmaxKL(m(logits, [19, 10]), { probs: m(probs, [19, 10]) }) },
  { op: 'sigmoid(x) · y', shape: '[6,7] ⊙ [7]', tol: 1e-6, run: (m) => ({ '': binary('mul', unary('sigmoid', m(x, [6, 7])), m(y, [7])) }) },
];

const $ = (id: string) => document.getElementById(id)!;
const fmt = (v: ArrayLike<number>) => Array.from(v).slice(0, 4).map((n) => n.toPrecision(6)).join(', ') + (v.length > 4 ? ', …' : '');

function cell(tr: HTMLTableRowElement, text: string, cls = ''): void {
  const td = tr.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function definitions(el: HTMLElement, entries: [string, string][]): void {
  for (const [k, v] of entries) {
    el.append(Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v }));
  }
}

function showAdapter(info: DeviceInfo): void {
  definitions($('adapter'), [
    ['vendor', info.vendor || '(not reported)'],
    ['architecture', info.architecture || '(not reported)'],
    ['description', info.description || '(not reported)'],
    ['fallback adapter', String(info.isFallbackAdapter)],
    ['features', info.features.join(', ') || '(none)'],
  ]);
  definitions($('limits'), Object.entries(info.limits).map(([k, v]) => [k, v.toLocaleString('en-US')]));
}

async function runCase(c: Case): Promise<boolean> {
  const on = (dev: Backend): Make => (values, shape, dtype = 'f32') => tensor(values, shape, { dtype, device: dev });
  const t0 = performance.now();
  const gpu = c.run(on('webgpu'));
  const gpuValues = await Promise.all(Object.values(gpu).map((t) => t.data()));
  const ms = performance.now() - t0;
  const cpu = c.run(on('cpu'));
  let allOk = true;
  for (const [j, [name, g]] of Object.entries(gpu).entries()) {
    const [gv, cv] = [gpuValues[j], await cpu[name].data()];
    let err = 0, scale = 1;
    for (let i = 0; i < cv.length; i++) {
      err = Math.max(err, Math.abs(gv[i] - cv[i]));
      scale = Math.max(scale, Math.abs(cv[i]));
    }
    // a NaN anywhere makes err NaN, and NaN <= tol is false
    const ok = gv.length === cv.length && err <= c.tol * scale;
    allOk &&= ok;
    const tr = ($('results') as HTMLTableSectionElement).insertRow();
    tr.dataset.row = name ? `${c.op} ${name}` : c.op;
    cell(tr, tr.dataset.row);
    cell(tr, `${c.shape} → [${g.shape.join(',')}]`);
    cell(tr, fmt(gv), 'values');
    cell(tr, fmt(cv), 'values');
    cell(tr, err.toExponential(2), 'num');
    cell(tr, (c.tol * scale).toExponential(1), 'num');
    cell(tr, j === 0 ? ms.toFixed(0) : '', 'num');
    cell(tr, ok ? 'ok' : 'FAIL', `status ${ok ? 'ok' : 'fail'}`);
  }
  return allOk;
}

async function main(): Promise<void> {
  await init({ requireWebGPU: true });
  showAdapter(device().info);
  $('status').textContent = 'Running…';
  let passed = 0;
  for (const c of CASES) if (await runCase(c)) passed++;
  $('status').textContent = `${passed} of ${CASES.length} ops match the CPU reference.`;
  document.body.dataset.status = 'done';
}

main().catch((e: unknown) => {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  $('status').append(Object.assign(document.createElement('div'), { className: 'error', textContent: msg }));
  document.body.dataset.status = 'error';
});
