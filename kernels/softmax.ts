// Softmax along the last axis and the row kernels built on it: log-softmax, both backward passes
// and the fused softmax-KL loss of DisAlign. One workgroup per row; each invocation walks a strided
// slice of the row (rows of any length), folding it into a running (max, sum of exp) pair that a
// tree in workgroup memory merges (the "online softmax" of Milakov & Gimelshein 2018): the row is
// read once for the statistics and once for the output, and exp never sees a positive argument.

import { check, fmtShape } from './errors.js';
import { runtime, grid1, type Bound } from './runtime.js';
import { dispatchRange, overBinding } from './split.js';
import { workgroupKernel, memoCode } from './wgsl.js';
import { Tensor } from './tensor.js';

/** Lowest finite f32: the running max starts here, so an entry of -inf adds exp(-inf) = 0, not NaN. */
const F32_LOWEST = 'bitcast<f32>(0xff7fffffu)';

/**
 * Invocations per row: about 16 elements each (32 at least, 256 at most). Fewer invocations than
 * elements keeps the tree short: on a CPU adapter (lavapipe) every tree level is a barrier over the
 * whole workgroup, and a 1000-wide row with 256 invocations spent more in the tree than in the row.
 */
const workgroupFor = (C: number): number => Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(Math.ceil(C / 16), 1)))));

const xlogx = (v: number): number => (v === 0 ? 0 : v * Math.log(v));

// ---------------------------------------------------------------- WGSL building blocks

const XLOGX_WGSL = 'fn xlogx(v: f32) -> f32 { return select(v * log(v), 0.0, v == 0.0); }';

/** Workgroup arrays for the named per-row accumulators. */
const shared = (names: string[], wg: number): string => names.map((n) => `var<workgroup> sh_${n}: array<f32, ${wg}>;`).join('\n');

/** Tree-sums the invocations' values of `names` (already stored in sh_*) into sh_*[0]. */
function treeSum(names: string[], wg: number): string {
  return `workgroupBarrier();
  for (var k = ${wg / 2}u; k > 0u; k = k >> 1u) {
    if (li < k) { ${names.map((n) => `sh_${n}[li] += sh_${n}[li + k];`).join(' ')} }
    workgroupBarrier();
  }`;
}

/**
 * WGSL defining M = max of the row and S = Σ exp(v - M), with v = `read` at column c; `sums` are
 * extra plain row sums (name → expression in c) computed in the same sweep.
 */
function rowMaxSumExp(read: string, wg: number, sums: Record<string, string> = {}): string {
  const extra = Object.keys(sums);
  return `var m = ${F32_LOWEST};
  var s = 0.0;
  ${extra.map((n) => `var ${n} = 0.0;`).join(' ')}
  for (var c = li; c < p.C; c += ${wg}u) {
    let v = ${read};
    // one exp per element, no branch: e = exp(-|v - m|) rescales s when v is the new max
    let d = v - m;
    let e = exp(-abs(d));
    s = select(s + e, s * e + 1.0, d > 0.0);
    m = max(m, v);
    ${extra.map((n) => `${n} += ${sums[n]};`).join(' ')}
  }
  sh_m[li] = m;
  sh_s[li] = s;
  ${extra.map((n) => `sh_${n}[li] = ${n};`).join(' ')}
  workgroupBarrier();
  for (var k = ${wg / 2}u; k > 0u; k = k >> 1u) {
    if (li < k) {
      let m1 = sh_m[li]; let m2 = sh_m[li + k]; let mm = max(m1, m2);
      sh_s[li] = sh_s[li] * exp(m1 - mm) + sh_s[li + k] * exp(m2 - mm);
      sh_m[li] = mm;
      ${extra.map((n) => `sh_${n}[li] += sh_${n}[li + k];`).join(' ')}
    }
    workgroupBarrier();
  }
  let M = sh_m[0];
  let S = sh_s[0];
  ${extra.map((n) => `let ${n.toUpperCase()} = sh_${n}[0];`).join(' ')}`;
}

/** A row kernel: one workgroup per row `row` of C, uniforms (rows, C), the given f32 (or typed) arrays, workgroup memory and a body. */
function rowKernel(wg: number, read: Record<string, string>, write: Record<string, string>, sharedNames: string[], body: string, prelude = ''): string {
  return workgroupKernel({
    preamble: [shared(sharedNames, wg), prelude].filter(Boolean).join('\n'),
    uniforms: { rows: 'u32', C: 'u32' }, read, write, wg, bound: 'rows',
  }, `  let row = w;
  let base = row * p.C;
  ${body}`);
}

/**
 * Compiles `gen(wg)` (wg chosen for C; a memoised generator) as kernel `softmax.<op>` and runs it over
 * `rows` rows. When a tensor exceeds one binding, it runs on ranges of rows: tensors with C values
 * per row (or one, like labels and per-row losses) are bound from the range's first row, the
 * per-class `weights` whole.
 */
function launchRows(op: string, C: number, gen: (wg: number) => string, tensors: Record<string, Tensor>, rows: number): void {
  const rt = runtime();
  const wg = workgroupFor(C);
  const k = rt.kernel(`softmax.${op}`, gen(wg));
  const bound = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.binding()]));
  if (!overBinding(...Object.values(tensors))) {
    rt.dispatch(k, bound, { rows, C }, grid1(rows));
    return;
  }
  const per = Math.floor(rt.bindingLimit / (C * 4));
  check(per > 0, op, () => `a row of ${C} values exceeds the binding limit of ${rt.bindingLimit} bytes`);
  const ranged: Record<string, Bound> = {}, perItem: Record<string, number> = {}, whole: Record<string, Bound> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name === 'weights') whole[name] = bound[name];
    else {
      ranged[name] = bound[name];
      perItem[name] = (t.size === rows * C ? C : 1) * 4;
    }
  }
  for (let a = 0; a < rows; a += per) {
    const n = Math.min(per, rows - a);
    dispatchRange(k, ranged, perItem, whole, a, n, { rows: n, C }, grid1(n));
  }
}

// ---------------------------------------------------------------- softmax / log-softmax

function checkRows(op: string, x: Tensor): number {
  check(x.dtype === 'f32', op, `needs an f32 tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  check(x.rank >= 1, op, `needs a tensor of rank >= 1 (works along the last axis), got shape ${fmtShape(x.shape)}`);
  return x.shape[x.rank - 1];
}

function softmaxCPU(x: Float64Array | Int32Array | Uint32Array, y: Float64Array | Int32Array | Uint32Array, C: number, log: boolean): void {
  for (let base = 0; base < x.length; base += C) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Number.isNaN(x[base + c]) ? NaN : Math.max(m, x[base + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[base + c] - m);
    for (let c = 0; c < C; c++) y[base + c] = log ? x[base + c] - m - Math.log(s) : Math.exp(x[base + c] - m) / s;
  }
}

const softmaxCode = memoCode((log: boolean, wg: number) => rowKernel(wg, { x: 'f32' }, { y: 'f32' }, ['m', 's'], `
  ${rowMaxSumExp('x[base + c]', wg)}
  let logS = log(S);
  for (var c = li; c < p.C; c += ${wg}u) {
    let v = x[base + c];
    y[base + c] = ${log ? '(v - M) - logS' : 'exp(v - M) / S'};
  }`));

function softmaxImpl(op: 'softmax' | 'logSoftmax', x: Tensor): Tensor {
  const C = checkRows(op, x);
  const out = Tensor.empty(x.shape, 'f32', x.device, op);
  if (out.size === 0) return out;
  if (x.device === 'cpu') {
    softmaxCPU(x.cpu, out.cpu, C, op === 'logSoftmax');
    return out;
  }
  launchRows(op, C, (wg) => softmaxCode(op === 'logSoftmax', wg), { x, y: out }, x.size / C);
  return out;
}

/** y = exp(x - max x) / Σ exp(x - max x) along the last axis. */
export const softmax = (x: Tensor): Tensor => softmaxImpl('softmax', x);
/** y = (x - max x) - log Σ exp(x - max x) along the last axis. */
export const logSoftmax = (x: Tensor): Tensor => softmaxImpl('logSoftmax', x);

// ---------------------------------------------------------------- backward

const backwardCode = memoCode((soft: boolean, wg: number) => rowKernel(wg, { y: 'f32', dy: 'f32' }, { dx: 'f32' }, ['t'], `
  var t = 0.0;
  for (var c = li; c < p.C; c += ${wg}u) { t += ${soft ? 'dy[base + c] * y[base + c]' : 'dy[base + c]'}; }
  sh_t[li] = t;
  ${treeSum(['t'], wg)}
  let T = sh_t[0];
  for (var c = li; c < p.C; c += ${wg}u) {
    let i = base + c;
    dx[i] = ${soft ? 'y[i] * (dy[i] - T)' : 'dy[i] - exp(y[i]) * T'};
  }`));

function backwardImpl(op: 'softmaxBackward' | 'logSoftmaxBackward', y: Tensor, dy: Tensor): Tensor {
  const C = checkRows(op, y);
  check(dy.dtype === 'f32', op, `dy must be f32, got ${dy.dtype} ${fmtShape(dy.shape)}`);
  check(y.shape.join() === dy.shape.join(), op, `y ${fmtShape(y.shape)} and dy ${fmtShape(dy.shape)} differ in shape`);
  check(y.device === dy.device, op, `y and dy live on different backends (${y.device}, ${dy.device})`);
  const soft = op === 'softmaxBackward';
  const dx = Tensor.empty(y.shape, 'f32', y.device, op);
  if (dx.size === 0) return dx;
  if (y.device === 'cpu') {
    const Y = y.cpu, D = dy.cpu, X = dx.cpu;
    for (let base = 0; base < Y.length; base += C) {
      let t = 0;
      for (let c = 0; c < C; c++) t += soft ? D[base + c] * Y[base + c] : D[base + c];
      for (let c = 0; c < C; c++) X[base + c] = soft ? Y[base + c] * (D[base + c] - t) : D[base + c] - Math.exp(Y[base + c]) * t;
    }
    return dx;
  }
  launchRows(op.replace('Backward', '.backward'), C, (wg) => backwardCode(soft, wg), { y, dy, dx }, y.size / C);
  return dx;
}

/** dx = y ⊙ (dy − Σ dy ⊙ y) per row, with y = softmax(x): the gradient of softmax. */
export const softmaxBackward = (y: Tensor, dy: Tensor): Tensor => backwardImpl('softmaxBackward', y, dy);
/** dx = dy − exp(y) Σ dy per row, with y = logSoftmax(x): the gradient of log-softmax. */
export const logSoftmaxBackward = (y: Tensor, dy: Tensor): Tensor => backwardImpl('logSoftmaxBackward', y, dy);

// ---------------------------------------------------------------- fused softmax-KL (DisAlign)

/** The reference distribution p_r: given per row, or as labels with optional per-class weights. */
export type KLTarget = { probs: Tensor } | { labels: Tensor; weights?: Tensor };

/**
 * Per-row KL(p_r || softmax(z_i)) and its gradient in one kernel (DisAlign, Zhang et al. CVPR 2021):
 *   loss_i = Σ_c p_c log p_c − Σ_c p_c log softmax(z_i)_c   (0 log 0 = 0)
 *   grad_i = ∂loss_i/∂z_i = (Σ_c p_c) softmax(z_i) − p_r
 * With labels, p_r(c | x_i) = w_c δ_c(y_i) (generalized re-weighting; w = 1 without weights), so
 * loss_i = w log w − w log softmax(z_i)_y. The gradient equals that of w-weighted cross-entropy:
 * the two losses differ by the entropy of p_r, a constant in z. Labels < 0 are ignored (loss 0, grad
 * row 0); labels >= C are ignored on the GPU and throw on the CPU reference.
 */
export function softmaxKL(z: Tensor, target: KLTarget): { loss: Tensor; grad: Tensor } {
  const op = 'softmaxKL';
  check(z.dtype === 'f32', op, `logits must be f32, got ${z.dtype} ${fmtShape(z.shape)}`);
  check(z.rank === 2 && z.shape[1] > 0, op, `logits must have shape [N, C] with C >= 1, got ${fmtShape(z.shape)}`);
  const [N, C] = z.shape;
  const inputs: Tensor[] = [z];
  if ('probs' in target) {
    const pr = target.probs;
    check(pr.dtype === 'f32', op, `probs must be f32, got ${pr.dtype} ${fmtShape(pr.shape)}`);
    check(pr.shape.join() === z.shape.join(), op, `probs ${fmtShape(pr.shape)} must match logits ${fmtShape(z.shape)}`);
    inputs.push(pr);
  } else {
    const { labels, weights } = target;
    check(labels.dtype === 'i32', op, `labels must be i32, got ${labels.dtype} ${fmtShape(labels.shape)}`);
    check(labels.rank === 1 && labels.shape[0] === N, op, `labels must have shape [${N}] for logits ${fmtShape(z.shape)}, got ${fmtShape(labels.shape)}`);
    inputs.push(labels);
    if (weights) {
      check(weights.dtype === 'f32', op, `weights must be f32, got ${weights.dtype} ${fmtShape(weights.shape)}`);
      check(weights.rank === 1 && weights.shape[0] === C, op, `weights must have shape [${C}] for logits ${fmtShape(z.shape)}, got ${fmtShape(weights.shape)}`);
      inputs.push(weights);
    }
  }
  const devs = new Set(inputs.map((t) => t.device));
  check(devs.size === 1, op, `inputs live on different backends (${[...devs].join(', ')})`);
  const loss = Tensor.empty([N], 'f32', z.device, op);
  const grad = Tensor.empty([N, C], 'f32', z.device, op);
  if (N === 0) return { loss, grad };
  if (z.device === 'cpu') softmaxKLCPU(z, target, loss, grad);
  else if ('probs' in target) softmaxKLProbsGPU(z, target.probs, loss, grad);
  else softmaxKLLabelsGPU(z, target.labels, target.weights, loss, grad);
  return { loss, grad };
}

function softmaxKLCPU(z: Tensor, target: KLTarget, loss: Tensor, grad: Tensor): void {
  const [N, C] = z.shape;
  const Z = z.cpu, L = loss.cpu, G = grad.cpu;
  const logq = new Float64Array(C);
  for (let i = 0; i < N; i++) {
    const base = i * C;
    softmaxCPU(Z.subarray(base, base + C), logq, C, true);
    if ('probs' in target) {
      const pr = target.probs.cpu;
      let total = 0, l = 0;
      for (let c = 0; c < C; c++) total += pr[base + c];
      for (let c = 0; c < C; c++) {
        const pc = pr[base + c];
        l += xlogx(pc) - (pc === 0 ? 0 : pc * logq[c]);
        G[base + c] = total * Math.exp(logq[c]) - pc;
      }
      L[i] = l;
      continue;
    }
    const y = target.labels.cpu[i];
    check(y < C, 'softmaxKL', `label ${y} of row ${i} is out of range for ${C} classes`);
    if (y < 0) {
      L[i] = 0;
      G.fill(0, base, base + C);
      continue;
    }
    const w = target.weights ? target.weights.cpu[y] : 1;
    L[i] = xlogx(w) - w * logq[y];
    for (let c = 0; c < C; c++) G[base + c] = w * Math.exp(logq[c]) - (c === y ? w : 0);
  }
}

const klProbsCode = memoCode((wg: number) => rowKernel(wg, { z: 'f32', pr: 'f32' }, { grad: 'f32', loss: 'f32' }, ['m', 's', 'ptot', 'h', 'a'], `
  ${rowMaxSumExp('z[base + c]', wg, { ptot: 'pr[base + c]', h: 'xlogx(pr[base + c])' })}
  var a = 0.0;
  for (var c = li; c < p.C; c += ${wg}u) {
    let i = base + c;
    let pc = pr[i];
    let zc = z[i] - M;
    grad[i] = PTOT * (exp(zc) / S) - pc;
    a += pc * zc;
  }
  sh_a[li] = a;
  ${treeSum(['a'], wg)}
  if (li == 0u) { loss[row] = H - sh_a[0] + PTOT * log(S); }`, XLOGX_WGSL));

function softmaxKLProbsGPU(z: Tensor, pr: Tensor, loss: Tensor, grad: Tensor): void {
  const [N, C] = z.shape;
  // sweep 1: M, S and P = Σ p, H = Σ p log p; sweep 2: grad = P q − p and A = Σ p (z − M), so
  // loss = H − Σ p log q = H − A + P log S
  launchRows('softmaxKL.probs', C, klProbsCode, { z, pr, grad, loss }, N);
}

const klLabelsCode = memoCode((weights: boolean, wg: number) => rowKernel(wg, { z: 'f32', labels: 'i32', ...(weights ? { weights: 'f32' } : {}) }, { grad: 'f32', loss: 'f32' }, ['m', 's'], `
  ${rowMaxSumExp('z[base + c]', wg)}
  let label = labels[row];
  // labels outside [0, C) are ignored: never used as an index
  let valid = label >= 0 && u32(label) < p.C;
  let y = u32(select(0, label, valid));
  let wt = ${weights ? 'weights[y]' : '1.0'};
  for (var c = li; c < p.C; c += ${wg}u) {
    let i = base + c;
    grad[i] = select(0.0, wt * (exp(z[i] - M) / S) - select(0.0, wt, c == y), valid);
  }
  if (li == 0u) { loss[row] = select(0.0, xlogx(wt) - wt * ((z[base + y] - M) - log(S)), valid); }`, XLOGX_WGSL));

function softmaxKLLabelsGPU(z: Tensor, labels: Tensor, weights: Tensor | undefined, loss: Tensor, grad: Tensor): void {
  const [N, C] = z.shape;
  const tensors: Record<string, Tensor> = { z, labels, grad, loss, ...(weights ? { weights } : {}) };
  launchRows('softmaxKL.labels', C, (wg) => klLabelsCode(Boolean(weights), wg), tensors, N);
}
