// The core entries of the op table (autograd/table.ts): each op's forward (a raw kernel from
// kernels/) beside its backward rule, then the public differentiable functions.

import { binary, mapN, unary, POWI_WGSL, where as whereRaw, type UnaryOp } from '../kernels/elementwise.js';
import { check, fmtShape, normAxis } from '../kernels/errors.js';
import { zeros } from '../kernels/creation.js';
import { matmul as matmulRaw } from '../kernels/matmul.js';
import { reduce, sum as sumRaw } from '../kernels/reduce.js';
import { softmax as softmaxRaw, logSoftmax as logSoftmaxRaw, softmaxBackward, logSoftmaxBackward, softmaxKL as softmaxKLRaw, type KLTarget } from '../kernels/softmax.js';
import { permute as permuteRaw, slice as sliceRaw, concat as concatRaw, pad as padRaw, expand as expandRaw, narrow as narrowRaw } from '../kernels/layout.js';
import { gather as gatherRaw, scatterAdd as scatterAddRaw } from '../kernels/indexing.js';
import { scatterAddCSR } from '../kernels/segment.js';
import { Tensor, shapeSize, type Shape } from '../kernels/tensor.js';
import { isGradEnabled } from './tape.js';
import { defineOp } from './table.js';

/** An exact WGSL literal for a float (the bits, so the GPU sees the same number as the CPU). */
export const f32lit = (v: number): string => `bitcast<f32>(${new Uint32Array(new Float32Array([v]).buffer)[0]}u)`;

/** Sums g over the dimensions that broadcasting expanded, giving a tensor of `shape`. */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (g.shape.join() === shape.join()) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < g.rank; d++) if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) axes.push(d);
  const s = axes.length ? sumRaw(g, axes, true) : g;
  const out = s.reshape(shape);
  if (s !== g) s.dispose();
  return out;
}

// ---------------------------------------------------------------- unary backward: one fused kernel each
// d/dx as an expression of g (upstream grad), x (input), y (output)
type GradExpr = { wgsl: (g: string, x: string, y: string) => string; cpu: (g: number, x: number, y: number) => number; uses: 'x' | 'y' };
const UNARY_GRADS: Partial<Record<UnaryOp, GradExpr>> = {
  neg: { wgsl: (g) => `-${g}`, cpu: (g) => -g, uses: 'x' },
  exp: { wgsl: (g, _x, y) => `${g} * ${y}`, cpu: (g, _x, y) => g * y, uses: 'y' },
  log: { wgsl: (g, x) => `${g} / ${x}`, cpu: (g, x) => g / x, uses: 'x' },
  sqrt: { wgsl: (g, _x, y) => `0.5 * ${g} / ${y}`, cpu: (g, _x, y) => (0.5 * g) / y, uses: 'y' },
  rsqrt: { wgsl: (g, _x, y) => `-0.5 * ${g} * ${y} * ${y} * ${y}`, cpu: (g, _x, y) => -0.5 * g * y * y * y, uses: 'y' },
  abs: { wgsl: (g, x) => `${g} * sign(${x})`, cpu: (g, x) => g * Math.sign(x), uses: 'x' },
  relu: { wgsl: (g, x) => `select(0.0, ${g}, ${x} > 0.0)`, cpu: (g, x) => (x > 0 ? g : 0), uses: 'x' },
  sigmoid: { wgsl: (g, _x, y) => `${g} * ${y} * (1.0 - ${y})`, cpu: (g, _x, y) => g * y * (1 - y), uses: 'y' },
  tanh: { wgsl: (g, _x, y) => `${g} * (1.0 - ${y} * ${y})`, cpu: (g, _x, y) => g * (1 - y * y), uses: 'y' },
  square: { wgsl: (g, x) => `2.0 * ${g} * ${x}`, cpu: (g, x) => 2 * g * x, uses: 'x' },
  reciprocal: { wgsl: (g, _x, y) => `-${g} * ${y} * ${y}`, cpu: (g, _x, y) => -g * y * y, uses: 'y' },
};

function unaryGrad(op: UnaryOp, g: Tensor, x: Tensor, y: Tensor, p0: number, p1: number): Tensor | null {
  if (op === 'affine') return unary('affine', g, p0, 0);
  if (op === 'pow') {
    // g * p * x^(p-1), with the exponent baked in exactly
    const e = f32lit(p0 - 1), p = f32lit(p0);
    return mapN('pow_grad', [g, x], 'f32', ([gv, xv]) => `${gv} * ${p} * powi(${xv}, ${e})`, ([gv, xv]) => gv * p0 * xv ** (p0 - 1), { key: `p=${p0}`, preamble: POWI_WGSL });
  }
  if (op === 'clamp') {
    const lo = f32lit(p0), hi = f32lit(p1);
    return mapN('clamp_grad', [g, x], 'f32', ([gv, xv]) => `select(0.0, ${gv}, ${xv} >= ${lo} && ${xv} <= ${hi})`, ([gv, xv]) => (xv >= p0 && xv <= p1 ? gv : 0), { key: `${p0},${p1}` });
  }
  const d = UNARY_GRADS[op];
  if (!d) return null; // sign, floor, step: zero almost everywhere
  const other = d.uses === 'x' ? x : y;
  return mapN(`${op}_grad`, [g, other], 'f32', ([gv, ov]) => (d.uses === 'x' ? d.wgsl(gv, ov, '') : d.wgsl(gv, '', ov)), ([gv, ov]) => (d.uses === 'x' ? d.cpu(gv, ov, 0) : d.cpu(gv, 0, ov)));
}

// ---------------------------------------------------------------- the table

const maskGrad = (name: string, cond: (a: string, b: string) => string, cpuCond: (a: number, b: number) => number) =>
  (g: Tensor, a: Tensor, b: Tensor): Tensor =>
    mapN(name, [g, a, b], 'f32', ([gv, av, bv]) => `${gv} * ${cond(av, bv)}`, ([gv, av, bv]) => gv * cpuCond(av, bv));
// maximum/minimum: the gradient goes to the larger (smaller) input, split evenly on ties (as torch)
const maxGradA = maskGrad('max_grad', (a, b) => `select(select(0.0, 0.5, ${a} == ${b}), 1.0, ${a} > ${b})`, (a, b) => (a > b ? 1 : a === b ? 0.5 : 0));
const minGradA = maskGrad('min_grad', (a, b) => `select(select(0.0, 0.5, ${a} == ${b}), 1.0, ${a} < ${b})`, (a, b) => (a < b ? 1 : a === b ? 0.5 : 0));

const unaryOp = defineOp<{ op: UnaryOp; p0: number; p1: number }>('unary', {
  forward: ([x], a) => unary(a.op, x, a.p0, a.p1),
  backward: (g, { inputs: [x], out, attrs: a }) => [unaryGrad(a.op, g, x, out, a.p0, a.p1)],
});
const addOp = defineOp<object>('add', {
  forward: ([a, b]) => binary('add', a, b),
  backward: (g, { inputs: [a, b] }) => [unbroadcast(g, a.shape), unbroadcast(g, b.shape)],
});
const subOp = defineOp<object>('sub', {
  forward: ([a, b]) => binary('sub', a, b),
  backward: (g, { inputs: [a, b] }) => [unbroadcast(g, a.shape), b.requiresGrad ? unbroadcast(unary('neg', g), b.shape) : null],
});
const mulOp = defineOp<object>('mul', {
  forward: ([a, b]) => binary('mul', a, b),
  backward: (g, { inputs: [a, b] }) => [a.requiresGrad ? unbroadcast(binary('mul', g, b), a.shape) : null, b.requiresGrad ? unbroadcast(binary('mul', g, a), b.shape) : null],
});
const divOp = defineOp<object>('div', {
  forward: ([a, b]) => binary('div', a, b),
  backward: (g, { inputs: [a, b], out }) => [
    a.requiresGrad ? unbroadcast(binary('div', g, b), a.shape) : null,
    b.requiresGrad ? unbroadcast(mapN('div_grad', [g, out, b], 'f32', ([gv, o, bv]) => `-${gv} * ${o} / ${bv}`, ([gv, o, bv]) => (-gv * o) / bv), b.shape) : null,
  ],
});
const maximumOp = defineOp<object>('maximum', {
  forward: ([a, b]) => binary('max', a, b),
  backward: (g, { inputs: [a, b] }) => [unbroadcast(maxGradA(g, a, b), a.shape), unbroadcast(maxGradA(g, b, a), b.shape)],
});
const minimumOp = defineOp<object>('minimum', {
  forward: ([a, b]) => binary('min', a, b),
  backward: (g, { inputs: [a, b] }) => [unbroadcast(minGradA(g, a, b), a.shape), unbroadcast(minGradA(g, b, a), b.shape)],
});
const whereOp = defineOp<object>('where', {
  forward: ([c, a, b]) => whereRaw(c, a, b),
  backward: (g, { inputs: [c, a, b] }) => {
    const z = zeros([], { device: g.device });
    return [null, unbroadcast(whereRaw(c, g, z), a.shape), unbroadcast(whereRaw(c, z, g), b.shape)];
  },
});
const matmulOp = defineOp<{ transA: boolean; transB: boolean }>('matmul', {
  forward: ([a, b], t) => matmulRaw(a, b, t),
  // C = op(A) op(B): dA = G op(B)^T (or op(B) G^T when A is stored transposed), dB likewise
  backward: (g, { inputs: [a, b], attrs: { transA, transB } }) => [
    a.requiresGrad ? unbroadcast(transA ? matmulRaw(b, g, { transA: transB, transB: true }) : matmulRaw(g, b, { transB: !transB }), a.shape) : null,
    b.requiresGrad ? unbroadcast(transB ? matmulRaw(g, a, { transA: true, transB: transA }) : matmulRaw(a, g, { transA: !transA }), b.shape) : null,
  ],
});
const reduceOp = defineOp<{ op: 'sum' | 'mean' | 'max' | 'min'; axes: number[]; keepdims: boolean }>('reduce', {
  forward: ([x], a) => reduce(a.op, x, a.axes, a.keepdims),
  backward: (g, { inputs: [x], out, attrs: a }) => {
    const kept = keptShape(x.shape, a.axes);
    const gk = g.reshape(kept);
    if (a.op === 'sum') return [expandRaw(gk, x.shape)];
    if (a.op === 'mean') {
      const n = reducedCount(x.shape, a.axes);
      return [mapN('mean_grad', [gk], 'f32', ([v]) => `${v} * ${f32lit(1 / n)}`, ([v]) => v / n, { key: `${n}`, outShape: x.shape })];
    }
    // max/min: the gradient is shared evenly by the elements equal to the extremum (amax semantics)
    const mask = mapN('extremum_mask', [x, out.reshape(kept)], 'f32', ([xv, yv]) => `select(0.0, 1.0, ${xv} == ${yv})`, ([xv, yv]) => (xv === yv ? 1 : 0));
    const count = sumRaw(mask, a.axes, true);
    return [mapN('extremum_grad', [mask, gk, count], 'f32', ([m, gv, c]) => `${m} * ${gv} / ${c}`, ([m, gv, c]) => (m * gv) / c)];
  },
});
const softmaxOp = defineOp<object>('softmax', {
  forward: ([x]) => softmaxRaw(x),
  backward: (g, { out }) => [softmaxBackward(out, g)],
});
const logSoftmaxOp = defineOp<object>('logSoftmax', {
  forward: ([x]) => logSoftmaxRaw(x),
  backward: (g, { out }) => [logSoftmaxBackward(out, g)],
});
const reshapeOp = defineOp<{ shape: number[] }>('reshape', {
  forward: ([x], a) => x.reshape(a.shape),
  backward: (g, { inputs: [x] }) => [g.reshape(x.shape)],
});
const permuteOp = defineOp<{ perm: number[] }>('permute', {
  forward: ([x], a) => permuteRaw(x, a.perm),
  backward: (g, { attrs: { perm } }) => {
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [permuteRaw(g, inv)];
  },
});
const sliceOp = defineOp<{ begin: number[]; size: number[] }>('slice', {
  forward: ([x], a) => sliceRaw(x, a.begin, a.size),
  backward: (g, { inputs: [x], out, attrs: a }) => [padRaw(g, x.shape.map((d, i) => [a.begin[i], d - a.begin[i] - out.shape[i]] as [number, number]))],
});
const padOp = defineOp<{ pads: [number, number][]; value: number }>('pad', {
  forward: ([x], a) => padRaw(x, a.pads, a.value),
  backward: (g, { inputs: [x], attrs: a }) => [sliceRaw(g, a.pads.map((p) => p[0]), [...x.shape])],
});
const concatOp = defineOp<{ axis: number }>('concat', {
  forward: (xs, a) => concatRaw(xs, a.axis),
  backward: (g, { inputs, attrs: { axis } }) => {
    let at = 0;
    return inputs.map((x) => {
      const piece = narrowRaw(g, axis, at, x.shape[axis]);
      at += x.shape[axis];
      return piece;
    });
  },
});
const expandOp = defineOp<{ shape: number[] }>('expand', {
  forward: ([x], a) => expandRaw(x, a.shape),
  backward: (g, { inputs: [x] }) => [unbroadcast(g, x.shape)],
});
const gatherOp = defineOp<{ axis: number }>('gather', {
  forward: ([x, idx], a) => gatherRaw(x, idx, a.axis),
  // a stable counting sort of idx into CSR, then a segment sum of g's rows (deterministic, O(n))
  backward: (g, { inputs: [x, idx], attrs: { axis } }) => [scatterAddCSR(g, idx, axis, x.shape), null],
});
const scatterAddOp = defineOp<{ axis: number }>('scatterAdd', {
  forward: ([base, idx, src], a) => scatterAddRaw(base, idx, src, a.axis),
  backward: (g, { inputs: [, idx], attrs: { axis } }) => [g, null, gatherRaw(g, idx, axis)],
});
const softmaxKLOp = defineOp<{ target: KLTarget; grad?: Tensor }>('softmaxKL', {
  // the kernel returns loss and dloss/dz in one pass; backward scales the saved gradient by g
  forward: ([z], a) => {
    const { loss, grad } = softmaxKLRaw(z, a.target);
    if (isGradEnabled() && z.requiresGrad) a.grad = grad;
    else grad.dispose();
    return loss;
  },
  backward: (g, { attrs: a }) => [binary('mul', a.grad!, g.reshape([g.size, 1]))],
});

function keptShape(shape: Shape, axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}
function reducedCount(shape: Shape, axes: number[]): number {
  return axes.reduce((n, a) => n * shape[a], 1);
}


// ---------------------------------------------------------------- public differentiable API

const un = (o: UnaryOp, p0 = 0, p1 = 0) => (x: Tensor): Tensor => unaryOp([x], { op: o, p0, p1 });
export const neg = un('neg');
export const exp = un('exp');
export const log = un('log');
export const sqrt = un('sqrt');
export const rsqrt = un('rsqrt');
export const abs = un('abs');
export const relu = un('relu');
export const sigmoid = un('sigmoid');
export const tanh = un('tanh');
export const square = un('square');
export const reciprocal = un('reciprocal');
export const sign = un('sign');
export const pow = (x: Tensor, p: number): Tensor => un('pow', p)(x);
export const clamp = (x: Tensor, lo: number, hi: number): Tensor => un('clamp', lo, hi)(x);
/** scale * x + shift */
export const affine = (x: Tensor, scale: number, shift = 0): Tensor => un('affine', scale, shift)(x);
export const mulScalar = (x: Tensor, s: number): Tensor => affine(x, s, 0);
export const addScalar = (x: Tensor, s: number): Tensor => affine(x, 1, s);

export const add = (a: Tensor, b: Tensor): Tensor => addOp([a, b], {});
export const sub = (a: Tensor, b: Tensor): Tensor => subOp([a, b], {});
export const mul = (a: Tensor, b: Tensor): Tensor => mulOp([a, b], {});
export const div = (a: Tensor, b: Tensor): Tensor => divOp([a, b], {});
export const maximum = (a: Tensor, b: Tensor): Tensor => maximumOp([a, b], {});
export const minimum = (a: Tensor, b: Tensor): Tensor => minimumOp([a, b], {});
export const where = (cond: Tensor, a: Tensor, b: Tensor): Tensor => whereOp([cond, a, b], {});

export const matmul = (a: Tensor, b: Tensor, t: { transA?: boolean; transB?: boolean } = {}): Tensor =>
  matmulOp([a, b], { transA: Boolean(t.transA), transB: Boolean(t.transB) });

function axesOf(opName: string, x: Tensor, axes?: number | number[]): number[] {
  if (axes === undefined) return x.shape.map((_, i) => i);
  const list = (typeof axes === 'number' ? [axes] : axes).map((a) => normAxis(opName, a, x.rank));
  check(new Set(list).size === list.length, opName, `duplicate axes ${fmtShape(list)}`);
  return list.sort((a, b) => a - b);
}
const red = (o: 'sum' | 'mean' | 'max' | 'min') => (x: Tensor, axes?: number | number[], keepdims = false): Tensor =>
  reduceOp([x], { op: o, axes: axesOf(o, x, axes), keepdims });
export const sum = red('sum');
export const mean = red('mean');
export const max = red('max');
export const min = red('min');

export const softmax = (x: Tensor): Tensor => softmaxOp([x], {});
export const logSoftmax = (x: Tensor): Tensor => logSoftmaxOp([x], {});
/** Per-row KL(p_r || softmax(z)) for z [N, C]; see kernels/softmax.ts for the targets. */
export const softmaxKL = (z: Tensor, target: KLTarget): Tensor => softmaxKLOp([z], { target });

export const reshape = (x: Tensor, shape: number[]): Tensor => reshapeOp([x], { shape });
export const flatten = (x: Tensor, startDim = 1): Tensor => reshape(x, [...x.shape.slice(0, startDim), shapeSize(x.shape.slice(startDim))]);
export const permute = (x: Tensor, perm: number[]): Tensor => permuteOp([x], { perm });
export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const a = normAxis('transpose', d0, x.rank), b = normAxis('transpose', d1, x.rank);
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return permute(x, perm);
}
export function slice(x: Tensor, begin: number[], size: number[]): Tensor {
  check(begin.length === x.rank && size.length === x.rank, 'slice', `begin/size need ${x.rank} entries for shape ${fmtShape(x.shape)}`);
  const sz = size.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
  return sliceOp([x], { begin, size: sz });
}
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normAxis('narrow', axis, x.rank);
  return slice(x, x.shape.map((_, i) => (i === a ? start : 0)), x.shape.map((d, i) => (i === a ? length : d)));
}
export const pad = (x: Tensor, pads: [number, number][], value = 0): Tensor => padOp([x], { pads, value });
export const concat = (xs: Tensor[], axis: number): Tensor => concatOp(xs, { axis: normAxis('concat', axis, xs[0]?.rank ?? 1) });
export function split(x: Tensor, sizes: number[], axis: number): Tensor[] {
  let at = 0;
  return sizes.map((s) => {
    const piece = narrow(x, axis, at, s);
    at += s;
    return piece;
  });
}
export const expand = (x: Tensor, shape: number[]): Tensor => expandOp([x], { shape });
export const gather = (x: Tensor, indices: Tensor, axis: number): Tensor => gatherOp([x, indices], { axis: normAxis('gather', axis, x.rank) });
export const scatterAdd = (base: Tensor, indices: Tensor, src: Tensor, axis: number): Tensor =>
  scatterAddOp([base, indices, src], { axis: normAxis('scatterAdd', axis, base.rank) });
