// Reductions over any set of axes (sum, mean, max, min) and argmax/argmin along one axis.
// Plan: drop size-1 dims and merge adjacent dims that are all reduced or all kept, so the tensor is
// a list of alternating kept/reduced blocks. Each stage reduces one reduced block, viewed as
// [outer, R, inner]. When several reduced blocks remain (e.g. axes (0, 2, 3) of NCHW), they are
// reduced one after another, largest first, instead of permuting them together: the input is read
// once and no copy of it is written; later stages only read the (smaller) partial result.
// One kernel covers both layouts: a workgroup of TX x TY invocations owns TX adjacent inner
// positions and one chunk of R; each invocation accumulates at most MAX_PER strided elements, then
// a tree over TY in workgroup memory combines them. TX = 1 is the row reduction (inner == 1: the
// workgroup walks one contiguous row); TX > 1 reads TX adjacent columns per row of R, so loads stay
// coalesced. When R is longer than one chunk the partial results [outer, chunks, inner] are reduced
// again, which keeps sums pairwise (the error grows like log R, not R) and spreads a long
// reduction over many workgroups.
// An input larger than one storage binding is reduced in chunks of rows along dim 0: the chunks'
// results are concatenated when dim 0 is kept, else combined in order (sum, max, min; mean as a sum).

import { check, fmtShape, normAxis } from './errors.js';
import { runtime, grid1, type Bound } from './runtime.js';
import { workgroupKernel, memoCode, IS_NAN_WGSL } from './wgsl.js';
import { full } from './creation.js';
import { binary, unary } from './elementwise.js';
import { byRows, overBinding, rowsPerChunk, sliceRows } from './split.js';
import { Tensor, stridesOf, type DType, type Shape } from './tensor.js';

export type ReduceOp = 'sum' | 'mean' | 'max' | 'min';
type ArgOp = 'argmax' | 'argmin';
/** What one reduction pass computes (mean is a sum scaled in its last pass). */
type PassKind = 'sum' | 'max' | 'min' | ArgOp;

const WG = 256;
/** Elements one invocation accumulates sequentially in a pass before the tree takes over. */
const MAX_PER = 32;

// ---------------------------------------------------------------- planning

/** One stage: reduce the middle dim of x viewed as [outer, R, inner]. */
interface Stage {
  outer: number;
  R: number;
  inner: number;
}

/** The stages that reduce the dims of `shape` flagged in `reduced` (see the header comment). */
function plan(shape: Shape, reduced: boolean[]): Stage[] {
  let blocks: { size: number; reduced: boolean }[] = [];
  const push = (size: number, red: boolean): void => {
    const last = blocks[blocks.length - 1];
    if (size === 1) return;
    if (last && last.reduced === red) last.size *= size;
    else blocks.push({ size, reduced: red });
  };
  shape.forEach((size, d) => push(size, reduced[d]));
  const prod = (bs: typeof blocks): number => bs.reduce((a, b) => a * b.size, 1);
  const stages: Stage[] = [];
  for (;;) {
    const red = blocks.filter((b) => b.reduced);
    if (red.length === 0) break;
    const j = blocks.indexOf(red.reduce((a, b) => (b.size > a.size ? b : a)));
    stages.push({ outer: prod(blocks.slice(0, j)), R: blocks[j].size, inner: prod(blocks.slice(j + 1)) });
    const rest = blocks.filter((_, k) => k !== j);
    blocks = [];
    for (const b of rest) push(b.size, b.reduced);
  }
  return stages.length ? stages : [{ outer: prod(blocks), R: 1, inner: 1 }];
}

/** Normalises `axes` (undefined = all, negative allowed) into a per-dim mask. */
function reducedMask(op: string, x: Tensor, axes: number | readonly number[] | undefined): boolean[] {
  const rank = x.rank;
  if (axes === undefined) return new Array<boolean>(rank).fill(true);
  const list = typeof axes === 'number' ? [axes] : axes;
  const mask = new Array<boolean>(rank).fill(false);
  for (const a of list) {
    const d = normAxis(op, a, rank);
    check(!mask[d] || rank === 0, op, `axis ${a} is given twice in [${list.join(', ')}] for a tensor of shape ${fmtShape(x.shape)}`);
    if (rank > 0) mask[d] = true;
  }
  return mask;
}

const outShape = (shape: Shape, mask: boolean[], keepdims: boolean): number[] =>
  keepdims ? shape.map((s, d) => (mask[d] ? 1 : s)) : shape.filter((_, d) => !mask[d]);

// ---------------------------------------------------------------- CPU reference (float64)

const isNaNOrBetter = (arg: ArgOp, v: number, best: number): boolean =>
  !Number.isNaN(best) && (Number.isNaN(v) || (arg === 'argmax' ? v > best : v < best));

function reduceCPU(kind: ReduceOp | ArgOp, x: Tensor, mask: boolean[], out: Tensor, argAxis: number): void {
  const shape = x.shape, rank = shape.length;
  const oStrides = stridesOf(shape.map((s, d) => (mask[d] ? 1 : s))).map((s, d) => (mask[d] ? 0 : s));
  const n = out.size;
  const isArg = kind === 'argmax' || kind === 'argmin';
  const acc = new Float64Array(n).fill(kind === 'max' || kind === 'argmax' ? -Infinity : kind === 'min' || kind === 'argmin' ? Infinity : 0);
  const idx = new Int32Array(n).fill(-1);
  const src = x.cpu;
  const pos = new Array<number>(rank).fill(0);
  let o = 0;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (kind === 'sum' || kind === 'mean') acc[o] += v;
    else if (kind === 'max') acc[o] = Number.isNaN(v) || Number.isNaN(acc[o]) ? NaN : Math.max(acc[o], v);
    else if (kind === 'min') acc[o] = Number.isNaN(v) || Number.isNaN(acc[o]) ? NaN : Math.min(acc[o], v);
    // elements arrive in increasing index along the axis, so only a strict improvement moves the
    // index: the first of equal values (and the first NaN) wins, as in NumPy and PyTorch
    else if (idx[o] < 0 || isNaNOrBetter(kind, v, acc[o])) {
      acc[o] = v;
      idx[o] = pos[argAxis];
    }
    for (let d = rank - 1; d >= 0; d--) {
      o += oStrides[d];
      if (++pos[d] < shape[d]) break;
      o -= oStrides[d] * shape[d];
      pos[d] = 0;
    }
  }
  const R = x.size / Math.max(n, 1);
  const res = out.cpu;
  for (let j = 0; j < n; j++) res[j] = isArg ? idx[j] : kind === 'mean' ? acc[j] / R : acc[j];
}

// ---------------------------------------------------------------- WGSL

function identity(kind: PassKind, t: string): string {
  if (kind === 'sum') return `${t}(0)`;
  const high = kind === 'min' || kind === 'argmin';
  if (t === 'f32') return high ? 'p.inf' : '-p.inf'; // a uniform: WGSL cannot spell infinity as a constant
  if (t === 'i32') return high ? '2147483647i' : '(-2147483647i - 1i)';
  return high ? '0xffffffffu' : '0u';
}

/** WGSL: `better(v, i, w, j)` is true when (v, i) should replace (w, j); NaN beats numbers, ties go to the lower index. */
function betterFn(kind: ArgOp, t: DType): string {
  const cmp = kind === 'argmax' ? '>' : '<';
  if (t !== 'f32') return `fn better(v: ${t}, i: i32, w: ${t}, j: i32) -> bool { return v ${cmp} w || (v == w && i < j); }`;
  return `fn better(v: f32, i: i32, w: f32, j: i32) -> bool {
  let nv = is_nan(v); let nw = is_nan(w);
  if (nv || nw) { return nv && (!nw || i < j); }
  return v ${cmp} w || (v == w && i < j);
}`;
}

function combineFn(kind: 'sum' | 'max' | 'min', t: string): string {
  if (kind === 'sum') return `fn combine(a: ${t}, b: ${t}) -> ${t} { return a + b; }`;
  if (t !== 'f32') return `fn combine(a: ${t}, b: ${t}) -> ${t} { return ${kind}(a, b); }`;
  // max/min of NaN is NaN (WGSL's max/min may drop it)
  return `fn combine(a: f32, b: f32) -> f32 { if (is_nan(a)) { return a; } if (is_nan(b)) { return b; } return ${kind}(a, b); }`;
}

/**
 * One pass over x viewed as [outer, R, inner] → y [outer, chunks, inner]. Arg passes carry an i32
 * index alongside each value; `chained` passes read the indices of the previous pass. f32 sums
 * load vec4s where the layout allows (lavapipe compiles each storage load to a scalar load per lane,
 * so a vec4 load does a quarter of the loads and index arithmetic): t = 'vec4<f32>' sums 4 adjacent
 * columns at once (inner counted in vec4s); `rowVec` reads a row (inner = 1) as vec4s and adds the
 * 4 lanes before the tree (R counted in vec4s).
 */
function reduceWGSL(kind: PassKind, t: string, tx: number, ty: number, chained: boolean, rowVec: boolean): string {
  const isArg = kind === 'argmax' || kind === 'argmin';
  const scale = kind === 'sum' && t.includes('f32') ? ' * p.scale' : '';
  const lt = rowVec ? 'vec4<f32>' : t;
  return workgroupKernel({
    preamble: [
      `var<workgroup> sv: array<${t}, ${tx * ty}>;`,
      isArg ? `var<workgroup> si: array<i32, ${tx * ty}>;` : '',
      t === 'f32' ? IS_NAN_WGSL : '',
      isArg ? betterFn(kind, t as DType) : combineFn(kind, t),
    ].filter(Boolean).join('\n'),
    uniforms: { outer: 'u32', R: 'u32', inner: 'u32', chunks: 'u32', per: 'u32', tiles: 'u32', scale: 'f32', inf: 'f32' },
    read: { x: lt, ...(chained ? { xi: 'i32' } : {}) },
    write: { y: t, ...(isArg ? { yi: 'i32' } : {}) },
    wg: [tx, ty, 1],
  }, /* wgsl */ `  let tile = w % p.tiles;
  let c = (w / p.tiles) % p.chunks;
  let o = w / (p.tiles * p.chunks);
  if (o >= p.outer) { return; }
  let i = tile * ${tx}u + lid.x;
  var acc = ${identity(kind, lt)};
  ${isArg ? 'var accI = 2147483647i;' : ''}
  if (i < p.inner) {
    let r0 = c * p.per * ${ty}u + lid.y;
    for (var k = 0u; k < p.per; k++) {
      let r = r0 + k * ${ty}u;
      if (r >= p.R) { break; }
      let off = (o * p.R + r) * p.inner + i;
      ${isArg ? `let v = x[off]; let vi = ${chained ? 'xi[off]' : 'i32(r)'};
      if (better(v, vi, acc, accI)) { acc = v; accI = vi; }` : kind === 'sum' ? 'acc += x[off];' : 'acc = combine(acc, x[off]);'}
    }
  }
  sv[li] = ${rowVec ? 'acc.x + acc.y + acc.z + acc.w' : 'acc'};
  ${isArg ? 'si[li] = accI;' : ''}
  workgroupBarrier();
  for (var s = ${ty >> 1}u; s > 0u; s = s >> 1u) {
    if (lid.y < s) {
      let j = li + s * ${tx}u;
      ${isArg ? 'if (better(sv[j], si[j], sv[li], si[li])) { sv[li] = sv[j]; si[li] = si[j]; }' : 'sv[li] = combine(sv[li], sv[j]);'}
    }
    workgroupBarrier();
  }
  if (lid.y == 0u && i < p.inner) {
    let dst = (o * p.chunks + c) * p.inner + i;
    y[dst] = sv[lid.x]${scale};
    ${isArg ? 'yi[dst] = si[lid.x];' : ''}
  }`);
}

/** reduceWGSL memoised on all of its arguments (the runtime still caches the pipeline by the code). */
const reduceKernelCode = memoCode(reduceWGSL);

const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(n));

/** Runs the reduction stages and passes on the GPU, writing the final values (or indices) into `out`. */
function reduceGPU(kind: PassKind, x: Tensor, stages: Stage[], out: Tensor, scale: number): void {
  const rt = runtime();
  const temps: Tensor[] = [];
  const isArg = kind === 'argmax' || kind === 'argmin';
  let src = x;
  let srcIdx: Tensor | null = null;
  const f32sum = kind === 'sum' && x.dtype === 'f32';
  stages.forEach((st, s) => {
    // vec4 columns: the inner block in vec4s
    const vecCol = f32sum && st.inner % 4 === 0;
    const inner = vecCol ? st.inner / 4 : st.inner;
    const tx = inner === 1 ? 1 : Math.min(64, nextPow2(inner));
    const tiles = Math.ceil(inner / tx);
    let R = st.R;
    for (;;) {
      // vec4 rows: R in vec4s
      const rowVec = f32sum && inner === 1 && !vecCol && R % 4 === 0;
      const Rl = rowVec ? R / 4 : R;
      // as many invocations along R as give each about MAX_PER loads (at least 32 per workgroup, at
      // most WG): a short row no longer pays a 256-wide tree of barriers for a few loads per invocation
      const ty = Math.min(WG / tx, Math.max(Math.ceil(32 / tx), nextPow2(Math.ceil(Rl / MAX_PER))));
      const chunks = Math.ceil(Rl / (ty * MAX_PER));
      const per = Math.ceil(Math.ceil(Rl / chunks) / ty);
      const last = chunks === 1 && s === stages.length - 1;
      const shape = [st.outer, chunks, st.inner];
      const vals = last && !isArg ? out : Tensor.empty(shape, x.dtype, 'webgpu', kind);
      const idx = isArg ? (last ? out : Tensor.empty(shape, 'i32', 'webgpu', kind)) : null;
      if (vals !== out) temps.push(vals);
      if (idx && idx !== out) temps.push(idx);
      const k = rt.kernel(`reduce.${kind}`, reduceKernelCode(kind, vecCol ? 'vec4<f32>' : x.dtype, tx, ty, srcIdx !== null, rowVec));
      const buffers: Record<string, Bound> = { x: src.binding(), y: vals.binding() };
      if (srcIdx) buffers.xi = srcIdx.binding();
      if (idx) buffers.yi = idx.binding();
      rt.dispatch(k, buffers, { outer: st.outer, R: Rl, inner, chunks, per, tiles, scale: last ? scale : 1, inf: Infinity }, grid1(st.outer * chunks * tiles));
      src = vals;
      srcIdx = idx;
      R = chunks;
      if (chunks === 1) break;
    }
  });
  // the pool recycles these only after the submit that reads them
  for (const t of temps) t.dispose();
}

// ---------------------------------------------------------------- public ops

/**
 * Reduces `x` over `axes` (a number or a list, negative allowed; undefined = every axis, [] = none).
 * sum, max and min keep the dtype (integer sums wrap like WGSL); mean needs f32. The sum of zero
 * elements is 0 and their mean NaN; max and min of an empty axis throw.
 */
export function reduce(op: ReduceOp, x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor {
  check(['sum', 'mean', 'max', 'min'].includes(op), 'reduce', `unknown op '${op}'`);
  check(op !== 'mean' || x.dtype === 'f32', op, `needs an f32 tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  const mask = reducedMask(op, x, axes);
  const R = x.shape.reduce((a, s, d) => (mask[d] ? a * s : a), 1);
  check(R > 0 || op === 'sum' || op === 'mean', op, `cannot reduce over an empty axis (shape ${fmtShape(x.shape)}, axes ${axes === undefined ? 'all' : `[${axes}]`})`);
  const shape = outShape(x.shape, mask, keepdims);
  if (R === 0) return full(shape, op === 'sum' ? 0 : NaN, { dtype: x.dtype, device: x.device });
  const out = Tensor.empty(shape, x.dtype, x.device, op);
  if (out.size === 0) return out;
  if (x.device === 'cpu') {
    reduceCPU(op, x, mask, out, -1);
    return out;
  }
  if (R === 1) runtime().copy(x.buffer, 0, out.buffer, 0, out.size * 4); // only size-1 axes: nothing to combine
  else if (overBinding(x)) {
    out.dispose();
    return reduceByRows(op, x, mask, shape);
  } else reduceGPU(op === 'mean' ? 'sum' : op, x, plan(x.shape, mask), out, op === 'mean' ? 1 / R : 1);
  return out;
}

/** reduce() of an x larger than one binding, in chunks of rows along dim 0 (all axes: of single elements). */
function reduceByRows(op: ReduceOp, x: Tensor, mask: boolean[], shape: number[]): Tensor {
  const flat = mask.every(Boolean) ? x.reshape([x.size]) : x;
  const axes = mask.every(Boolean) ? [0] : mask.flatMap((m, d) => (m ? [d] : []));
  const rowBytes = (flat.size / flat.shape[0]) * 4;
  let out: Tensor;
  if (!mask[0]) {
    // dim 0 is kept, and stays the output's dim 0
    out = byRows(op, [flat], rowBytes, ([xc]) => [reduce(op, xc, axes, true)])[0];
  } else {
    const part = op === 'mean' ? 'sum' : op;
    const rows = flat.shape[0];
    const per = rowsPerChunk(op, rows, rowBytes, () => fmtShape(x.shape));
    let acc: Tensor | null = null;
    for (let a = 0; a < rows; a += per) {
      const xc = sliceRows(flat, a, Math.min(rows, a + per));
      const p = reduce(part, xc, axes, true);
      xc.dispose();
      const next: Tensor = acc ? binary(part === 'sum' ? 'add' : part, acc, p) : p;
      if (acc) {
        acc.dispose();
        p.dispose();
      }
      acc = next;
      runtime().flush();
    }
    // mean: the sum times 1/R, R = the number of elements per output
    out = op === 'mean' ? unary('affine', acc!, acc!.size / x.size, 0) : acc!;
    if (out !== acc) acc!.dispose();
  }
  if (flat !== x) flat.dispose();
  const shaped = out.reshape(shape);
  out.dispose();
  return shaped;
}

export const sum = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => reduce('sum', x, axes, keepdims);
export const mean = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => reduce('mean', x, axes, keepdims);
export const max = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => reduce('max', x, axes, keepdims);
export const min = (x: Tensor, axes?: number | readonly number[], keepdims = false): Tensor => reduce('min', x, axes, keepdims);

function argReduce(op: ArgOp, x: Tensor, axis: number, keepdims: boolean): Tensor {
  const d = normAxis(op, axis, x.rank);
  const mask = x.shape.map((_, j) => j === d);
  check(x.rank === 0 || x.shape[d] > 0, op, `cannot reduce over an empty axis (shape ${fmtShape(x.shape)}, axis ${axis})`);
  const out = Tensor.empty(outShape(x.shape, mask, keepdims), 'i32', x.device, op);
  if (out.size === 0) return out;
  if (x.rank === 0 || x.shape[d] === 1) {
    // one candidate: index 0
    if (x.device === 'cpu') out.cpu.fill(0);
    else runtime().clear(out.buffer, out.size * 4);
  } else if (x.device === 'cpu') reduceCPU(op, x, mask, out, d);
  else reduceGPU(op, x, plan(x.shape, mask), out, 1);
  return out;
}

/** Index (i32) of the largest value along `axis`; the first on ties, the first NaN if any. */
export const argmax = (x: Tensor, axis: number, keepdims = false): Tensor => argReduce('argmax', x, axis, keepdims);
/** Index (i32) of the smallest value along `axis`; the first on ties, the first NaN if any. */
export const argmin = (x: Tensor, axis: number, keepdims = false): Tensor => argReduce('argmin', x, axis, keepdims);

