// Softmax, log-softmax and cross-entropy along any axis, for per-pixel losses over [N, C, H, W]
// (axis 1). x is viewed as [outer, C, inner]; one invocation owns one (outer, inner) position and
// walks its C entries at stride inner (consecutive invocations read consecutive pixels). Along the
// last axis (inner = 1) softmax and log-softmax use the row kernels of kernels/softmax.ts.
//
// Cross-entropy follows torch.nn.functional.cross_entropy with class-index targets:
//   loss_i = −w_{y_i} log softmax(z_i)_{y_i}, 0 where y_i = ignoreIndex
//   reduction 'mean': Σ_i loss_i / Σ_{i not ignored} w_{y_i} (Σ of 1s without weights); 'sum'; 'none'.
// The fused kernel returns per-position losses, the per-position weights (0 where ignored) and
// ∂loss_i/∂z_i = w_{y_i} (softmax(z_i) − onehot(y_i)) (0 where ignored), so the backward is a scale.
// Labels outside [0, C) other than ignoreIndex: the CPU reference throws; the GPU ignores them.

import { check, checkInputs, fmtShape, normAxis } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { softmax, logSoftmax, softmaxBackward, logSoftmaxBackward } from './softmax.js';
import { linearKernel } from './wgsl.js';
import { Tensor, shapeSize, type CPUArray } from './tensor.js';

const WG = 256;
/** Lowest finite f32: a -inf entry then adds exp(-inf) = 0, not NaN. */
const F32_LOWEST = 'bitcast<f32>(0xff7fffffu)';

interface AxisLayout {
  outer: number;
  C: number;
  inner: number;
}

function layoutOf(op: string, x: Tensor, axis: number): AxisLayout & { axis: number } {
  check(x.dtype === 'f32', op, () => `needs an f32 tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  check(x.rank >= 1, op, () => `needs a tensor of rank >= 1, got shape ${fmtShape(x.shape)}`);
  const a = normAxis(op, axis, x.rank);
  return { axis: a, outer: shapeSize(x.shape.slice(0, a)), C: x.shape[a], inner: shapeSize(x.shape.slice(a + 1)) };
}

const AXIS_UNIFORMS = { n: 'u32', C: 'u32', inner: 'u32' };

// the first element of position i and the max M and sum S = Σ exp(v − M) of its C entries (reads `src`)
const STATS_WGSL = (src: string): string => /* wgsl */ `  let first = (i / p.inner) * p.C * p.inner + i % p.inner;
  var M = ${F32_LOWEST};
  for (var c = 0u; c < p.C; c++) { M = max(M, ${src}[first + c * p.inner]); }
  var S = 0.0;
  for (var c = 0u; c < p.C; c++) { S += exp(${src}[first + c * p.inner] - M); }`;

/** For each position, calls f with the indices of its C entries. */
function eachPosition(L: AxisLayout, f: (idx: (c: number) => number) => void): void {
  for (let o = 0; o < L.outer; o++) for (let j = 0; j < L.inner; j++) f((c) => (o * L.C + c) * L.inner + j);
}

function softmaxAxisImpl(op: 'softmaxAxis' | 'logSoftmaxAxis', x: Tensor, axis: number): Tensor {
  const L = layoutOf(op, x, axis);
  checkInputs(op, [x]);
  const log = op === 'logSoftmaxAxis';
  if (L.inner === 1 && x.size > 0) return log ? logSoftmax(x) : softmax(x);
  const out = Tensor.empty(x.shape, 'f32', x.device, op);
  if (out.size === 0) return out;
  if (x.device === 'cpu') {
    const X = x.cpu, Y = out.cpu;
    eachPosition(L, (at) => {
      let m = -Infinity;
      for (let c = 0; c < L.C; c++) m = Math.max(m, X[at(c)]);
      let s = 0;
      for (let c = 0; c < L.C; c++) s += Math.exp(X[at(c)] - m);
      for (let c = 0; c < L.C; c++) Y[at(c)] = log ? X[at(c)] - m - Math.log(s) : Math.exp(X[at(c)] - m) / s;
    });
    return out;
  }
  const positions = L.outer * L.inner;
  const k = runtime().kernel(`softmax-axis.${log ? 'logSoftmax' : 'softmax'}`, linearKernel(
    { uniforms: AXIS_UNIFORMS, read: { x: 'f32' }, write: { y: 'f32' }, wg: WG, bound: 'n' },
    `${STATS_WGSL('x')}
  let logS = log(S);
  for (var c = 0u; c < p.C; c++) {
    let j = first + c * p.inner;
    y[j] = ${log ? '(x[j] - M) - logS' : 'exp(x[j] - M) / S'};
  }`,
  ));
  runtime().dispatch(k, { x: x.binding(), y: out.binding() }, { n: positions, C: L.C, inner: L.inner }, grid1(Math.ceil(positions / WG)));
  return out;
}

/** Softmax along `axis` (e.g. 1: over the channels of each pixel of [N, C, H, W]). */
export const softmaxAxis = (x: Tensor, axis: number): Tensor => softmaxAxisImpl('softmaxAxis', x, axis);
/** Log-softmax along `axis`. */
export const logSoftmaxAxis = (x: Tensor, axis: number): Tensor => softmaxAxisImpl('logSoftmaxAxis', x, axis);

function backwardImpl(op: 'softmaxAxisBackward' | 'logSoftmaxAxisBackward', y: Tensor, dy: Tensor, axis: number): Tensor {
  const L = layoutOf(op, y, axis);
  checkInputs(op, [y, dy]);
  check(dy.dtype === 'f32' && dy.shape.join() === y.shape.join(), op, () => `dy ${dy.dtype} ${fmtShape(dy.shape)} must match y ${fmtShape(y.shape)}`);
  const soft = op === 'softmaxAxisBackward';
  if (L.inner === 1 && y.size > 0) return soft ? softmaxBackward(y, dy) : logSoftmaxBackward(y, dy);
  const dx = Tensor.empty(y.shape, 'f32', y.device, op);
  if (dx.size === 0) return dx;
  if (y.device === 'cpu') {
    const Y = y.cpu, D = dy.cpu, X = dx.cpu;
    eachPosition(L, (at) => {
      let t = 0;
      for (let c = 0; c < L.C; c++) t += soft ? D[at(c)] * Y[at(c)] : D[at(c)];
      for (let c = 0; c < L.C; c++) X[at(c)] = soft ? Y[at(c)] * (D[at(c)] - t) : D[at(c)] - Math.exp(Y[at(c)]) * t;
    });
    return dx;
  }
  const positions = L.outer * L.inner;
  const k = runtime().kernel(`softmax-axis.${soft ? 'softmaxBackward' : 'logSoftmaxBackward'}`, linearKernel(
    { uniforms: AXIS_UNIFORMS, read: { y: 'f32', dy: 'f32' }, write: { dx: 'f32' }, wg: WG, bound: 'n' },
    `  let first = (i / p.inner) * p.C * p.inner + i % p.inner;
  var t = 0.0;
  for (var c = 0u; c < p.C; c++) { let j = first + c * p.inner; t += ${soft ? 'dy[j] * y[j]' : 'dy[j]'}; }
  for (var c = 0u; c < p.C; c++) {
    let j = first + c * p.inner;
    dx[j] = ${soft ? 'y[j] * (dy[j] - t)' : 'dy[j] - exp(y[j]) * t'};
  }`,
  ));
  runtime().dispatch(k, { y: y.binding(), dy: dy.binding(), dx: dx.binding() }, { n: positions, C: L.C, inner: L.inner }, grid1(Math.ceil(positions / WG)));
  return dx;
}

/** dx = y ⊙ (dy − Σ_axis dy ⊙ y), with y = softmaxAxis(x, axis). */
export const softmaxAxisBackward = (y: Tensor, dy: Tensor, axis: number): Tensor => backwardImpl('softmaxAxisBackward', y, dy, axis);
/** dx = dy − exp(y) Σ_axis dy, with y = logSoftmaxAxis(x, axis). */
export const logSoftmaxAxisBackward = (y: Tensor, dy: Tensor, axis: number): Tensor => backwardImpl('logSoftmaxAxisBackward', y, dy, axis);

// ---------------------------------------------------------------- fused cross-entropy

export interface SoftmaxCrossEntropyOptions {
  /** the class axis of the logits (default 1, torch's layout [N, C, d1, ...]) */
  axis?: number;
  /** targets equal to this contribute no loss and no gradient (default −100, as torch) */
  ignoreIndex?: number;
  /** class weights f32 [C] */
  weight?: Tensor;
}

export interface SoftmaxCrossEntropy {
  /** per position: −w_y log softmax(z)_y, 0 where ignored; labels' shape */
  loss: Tensor;
  /** per position: w_y, 0 where ignored (its sum is the 'mean' denominator) */
  weight: Tensor;
  /** ∂loss/∂z per position (unreduced), the logits' shape */
  grad: Tensor;
}

/**
 * Per-position cross-entropy of logits [..., C (at axis), ...] against i32 labels (the logits'
 * shape without the axis), its gradient, and the per-position target weights, in one pass.
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, opts: SoftmaxCrossEntropyOptions = {}): SoftmaxCrossEntropy {
  const op = 'softmaxCrossEntropy';
  const L = layoutOf(op, logits, opts.axis ?? 1);
  const w = opts.weight;
  checkInputs(op, w ? [logits, labels, w] : [logits, labels]);
  const want = logits.shape.filter((_, i) => i !== L.axis);
  check(labels.dtype === 'i32' && labels.shape.join() === want.join(), op,
    () => `labels must be i32 ${fmtShape(want)} for logits ${fmtShape(logits.shape)} (class axis ${L.axis}), got ${labels.dtype} ${fmtShape(labels.shape)}`);
  check(L.C >= 1, op, () => `needs at least one class, got logits ${fmtShape(logits.shape)}`);
  if (w) check(w.dtype === 'f32' && w.rank === 1 && w.size === L.C, op, () => `weight must be f32 [${L.C}], got ${w.dtype} ${fmtShape(w.shape)}`);
  const ignore = opts.ignoreIndex ?? -100;
  check(Number.isInteger(ignore), op, `ignoreIndex must be an integer, got ${ignore}`);
  const loss = Tensor.empty(want, 'f32', logits.device, op);
  const wt = Tensor.empty(want, 'f32', logits.device, op);
  const grad = Tensor.empty(logits.shape, 'f32', logits.device, op);
  if (grad.size === 0) return { loss, weight: wt, grad };
  if (logits.device === 'cpu') {
    const Z = logits.cpu, Y = labels.cpu, G = grad.cpu, Lo = loss.cpu, Wt = wt.cpu;
    const W: CPUArray | null = w ? w.cpu : null;
    let pos = 0;
    eachPosition(L, (at) => {
      const y = Y[pos];
      if (y === ignore) {
        Lo[pos] = 0;
        Wt[pos] = 0;
        for (let c = 0; c < L.C; c++) G[at(c)] = 0;
        pos++;
        return;
      }
      check(y >= 0 && y < L.C, op, () => `label ${y} at position ${pos} is out of range for ${L.C} classes (ignoreIndex ${ignore})`);
      let m = -Infinity;
      for (let c = 0; c < L.C; c++) m = Math.max(m, Z[at(c)]);
      let s = 0;
      for (let c = 0; c < L.C; c++) s += Math.exp(Z[at(c)] - m);
      const wy = W ? W[y] : 1;
      Lo[pos] = -wy * (Z[at(y)] - m - Math.log(s));
      Wt[pos] = wy;
      for (let c = 0; c < L.C; c++) G[at(c)] = wy * (Math.exp(Z[at(c)] - m) / s - (c === y ? 1 : 0));
      pos++;
    });
    return { loss, weight: wt, grad };
  }
  const positions = L.outer * L.inner;
  const k = runtime().kernel(`softmax-axis.crossEntropy${w ? '.weight' : ''}`, linearKernel(
    {
      uniforms: { ...AXIS_UNIFORMS, ignore: 'i32' },
      read: { z: 'f32', labels: 'i32', ...(w ? { weight: 'f32' } : {}) },
      write: { loss: 'f32', wt: 'f32', grad: 'f32' },
      wg: WG, bound: 'n',
    },
    `${STATS_WGSL('z')}
  let label = labels[i];
  let valid = (label != p.ignore) & (label >= 0) & (label < i32(p.C));
  let y = u32(select(0, label, valid));
  let wy = select(0.0, ${w ? 'weight[y]' : '1.0'}, valid);
  for (var c = 0u; c < p.C; c++) {
    let j = first + c * p.inner;
    grad[j] = wy * (exp(z[j] - M) / S - select(0.0, 1.0, c == y));
  }
  loss[i] = select(0.0, -wy * ((z[first + y * p.inner] - M) - log(S)), valid);
  wt[i] = wy;`,
  ));
  runtime().dispatch(k, { z: logits.binding(), labels: labels.binding(), ...(w ? { weight: w.binding() } : {}), loss: loss.binding(), wt: wt.binding(), grad: grad.binding() },
    { n: positions, C: L.C, inner: L.inner, ignore }, grid1(Math.ceil(positions / WG)));
  return { loss, weight: wt, grad };
}
