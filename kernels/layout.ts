// Layout kernels: permute/transpose, slice/narrow, concat/split, constant pad and expand. Every op
// materialises its result. On the GPU they reduce to three kernels: a strided copy (with the dims
// that are contiguous on both sides merged first, so most slices and concats become one buffer
// copy), a shared-memory tiled transpose, and a bounds-checked pad. The CPU references walk the
// output coordinates naively, without that planning, so the tests check the plan too.

import { check, checkInputs, fmtShape, normAxis } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { linearKernel, workgroupKernel, memoCode } from './wgsl.js';
import { mergeDims, pad8, MAX_UNIFORM_RANK } from './dims.js';
import { full } from './creation.js';
import { Tensor, stridesOf, shapeSize, type CPUArray, type DType, type Shape } from './tensor.js';

const WG = 256;
/** Rank the GPU kernels index (after merging dims): two vec4 of shape/strides in the uniforms. */
const MAX_RANK = MAX_UNIFORM_RANK;
/** Transpose tile edge; a workgroup of TILE x TILE_ROWS threads moves one TILE x TILE tile. */
const TILE = 32;
const TILE_ROWS = 8;
/** Below this extent a tile is mostly idle and the strided copy is as fast. */
const TILE_MIN = 8;

function checkShape(op: string, shape: readonly number[]): void {
  check(shape.every((d) => Number.isInteger(d) && d >= 0), op, () => `invalid shape ${fmtShape(shape)}`);
}

/** Calls fn(linearIndex, coords) for every coordinate of `shape` in row-major order (CPU references). */
function forEachCoord(shape: Shape, fn: (i: number, c: readonly number[]) => void): void {
  const n = shapeSize(shape);
  const c = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    fn(i, c);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

const dot = (c: readonly number[], s: readonly number[]): number => c.reduce((acc, v, d) => acc + v * s[d], 0);

/** WGSL that splits `r` into coordinates of a `rank`-dim shape (innermost first) and adds each times its strides. */
function unravelWGSL(rank: number, shapeField: string, strideFields: [string, string][]): string {
  let s = '';
  for (let d = rank - 1; d >= 0; d--) {
    const at = `[${d >> 2}][${d & 3}]`;
    const coord = d === 0 ? 'r' : `r % p.${shapeField}${at}`;
    s += `{ let c = ${coord}; ${d === 0 ? '' : `r = r / p.${shapeField}${at}; `}`;
    s += strideFields.map(([acc, f]) => `${acc} += c * p.${f}${at};`).join(' ') + ' }\n';
  }
  return s;
}

/**
 * GPU: y[outOffset + Σ c_d·outStrides_d] = x[inOffset + Σ c_d·inStrides_d] for every coordinate c
 * of `shape`. A copy that is contiguous on both sides becomes copyBufferToBuffer.
 */
function stridedCopy(x: Tensor, y: Tensor, shape: Shape, inStrides: readonly number[], inOffset: number, outStrides: readonly number[], outOffset: number, op: string): void {
  const n = shapeSize(shape);
  if (n === 0) return;
  const m = mergeDims(shape, [inStrides, outStrides]);
  const [is, os] = m.strides;
  const rank = m.shape.length;
  if (rank === 0 || (rank === 1 && is[0] === 1 && os[0] === 1)) {
    runtime().copy(x.buffer, inOffset * 4, y.buffer, outOffset * 4, n * 4);
    return;
  }
  check(rank <= MAX_RANK, op, () => `rank ${rank} after merging contiguous dims of ${fmtShape(shape)} exceeds ${MAX_RANK}`);
  const t = x.dtype;
  const k = runtime().kernel('layout.copy', copyCode(t, rank));
  runtime().dispatch(k, { x: x.binding(), y: y.binding() }, { n, ioff: inOffset, ooff: outOffset, shape: pad8(m.shape), sx: pad8(is), sy: pad8(os) }, grid1(Math.ceil(n / WG)));
}

/**
 * GPU transpose through a TILE x TILE workgroup tile: reads along the input's contiguous dim `pd`,
 * writes along the output's contiguous dim `qd`, so both sides are coalesced. The other dims of
 * the merged output shape are a batch indexed by workgroup.
 */
function tiledTranspose(x: Tensor, y: Tensor, shape: number[], is: number[], os: number[], pd: number, qd: number): void {
  const batch = shape.map((_, d) => d).filter((d) => d !== pd && d !== qd);
  const np = shape[pd], nq = shape[qd];
  const tp = Math.ceil(np / TILE), tq = Math.ceil(nq / TILE);
  const nb = batch.length;
  const total = tp * tq * shapeSize(batch.map((d) => shape[d]));
  const t = x.dtype;
  const k = runtime().kernel('layout.transpose', transposeCode(t, nb));
  runtime().dispatch(k, { x: x.binding(), y: y.binding() }, {
    total, np, nq, tp, tq, isq: is[qd], osp: os[pd],
    bshape: pad8(batch.map((d) => shape[d])), bsx: pad8(batch.map((d) => is[d])), bsy: pad8(batch.map((d) => os[d])),
  }, grid1(total));
}

// ---------------------------------------------------------------- permute / transpose

/** y = x with its dims reordered: y.shape[i] = x.shape[perm[i]] (negative entries count from the end). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const op = 'permute';
  checkInputs(op, [x]);
  check(perm.length === x.rank, op, () => `perm ${fmtShape(perm)} needs ${x.rank} entries for shape ${fmtShape(x.shape)}`);
  const axes = perm.map((d) => normAxis(op, d, x.rank));
  check(new Set(axes).size === axes.length, op, () => `perm ${fmtShape(perm)} is not a permutation of the dims of ${fmtShape(x.shape)}`);
  const outShape = axes.map((d) => x.shape[d]);
  const out = Tensor.empty(outShape, x.dtype, x.device, op);
  if (out.size === 0) return out;
  const xs = stridesOf(x.shape);
  const inStrides = axes.map((d) => xs[d]);
  if (x.device === 'cpu') {
    const a = x.cpu, o = out.cpu;
    forEachCoord(outShape, (i, c) => (o[i] = a[dot(c, inStrides)]));
    return out;
  }
  const m = mergeDims(outShape, [inStrides, stridesOf(outShape)]);
  const [is, os] = m.strides;
  const qd = m.shape.length - 1; // the output's contiguous dim
  const pd = is.indexOf(1); // the input's contiguous dim
  if (qd >= 1 && pd >= 0 && pd !== qd && Math.min(m.shape[pd], m.shape[qd]) >= TILE_MIN) {
    check(m.shape.length - 2 <= MAX_RANK, op, () => `too many non-contiguous dims in ${fmtShape(x.shape)} -> ${fmtShape(outShape)}`);
    tiledTranspose(x, out, m.shape, is, os, pd, qd);
  } else {
    stridedCopy(x, out, outShape, inStrides, 0, stridesOf(outShape), 0, op);
  }
  return out;
}

/** Swaps two dims (by default the last two). */
export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  checkInputs('transpose', [x]);
  const a = normAxis('transpose', d0, x.rank), b = normAxis('transpose', d1, x.rank);
  const perm = x.shape.map((_, i) => i);
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return permute(x, perm);
}

// ---------------------------------------------------------------- slice / narrow / split

/** y = x[begin_0 : begin_0 + size_0, ...]; a size of -1 runs to the end of that dim. */
export function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
  const op = 'slice';
  checkInputs(op, [x]);
  check(begin.length === x.rank && size.length === x.rank, op, () => `begin ${fmtShape(begin)} and size ${fmtShape(size)} need ${x.rank} entries for shape ${fmtShape(x.shape)}`);
  const outShape = size.map((s, d) => (s === -1 ? x.shape[d] - begin[d] : s));
  for (let d = 0; d < x.rank; d++) {
    check(Number.isInteger(begin[d]) && Number.isInteger(outShape[d]) && begin[d] >= 0 && outShape[d] >= 0 && begin[d] + outShape[d] <= x.shape[d], op,
      () => `begin ${fmtShape(begin)} size ${fmtShape(size)} is out of bounds for shape ${fmtShape(x.shape)} (dim ${d})`);
  }
  const out = Tensor.empty(outShape, x.dtype, x.device, op);
  if (out.size === 0) return out;
  const xs = stridesOf(x.shape);
  const offset = dot(begin, xs);
  if (x.device === 'cpu') {
    const a = x.cpu, o = out.cpu;
    forEachCoord(outShape, (i, c) => (o[i] = a[offset + dot(c, xs)]));
    return out;
  }
  stridedCopy(x, out, outShape, xs, offset, stridesOf(outShape), 0, op);
  return out;
}

/** x[..., start : start + length, ...] along `axis` (a negative start counts from the end). */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  checkInputs('narrow', [x]);
  check(x.rank >= 1, 'narrow', 'needs a tensor of rank >= 1, got a scalar');
  const a = normAxis('narrow', axis, x.rank);
  const s = start < 0 ? start + x.shape[a] : start;
  check(Number.isInteger(s) && Number.isInteger(length) && s >= 0 && length >= 0 && s + length <= x.shape[a], 'narrow',
    () => `start ${start} length ${length} is out of bounds for axis ${a} of shape ${fmtShape(x.shape)}`);
  return slice(x, x.shape.map((_, d) => (d === a ? s : 0)), x.shape.map((d, i) => (i === a ? length : d)));
}

/** Splits x along `axis` into pieces of the given sizes (which must add up to the dim). */
export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  checkInputs('split', [x]);
  check(x.rank >= 1, 'split', 'needs a tensor of rank >= 1, got a scalar');
  const a = normAxis('split', axis, x.rank);
  check(sizes.every((s) => Number.isInteger(s) && s >= 0) && sizes.reduce((u, v) => u + v, 0) === x.shape[a], 'split',
    () => `sizes ${fmtShape(sizes)} do not add up to dim ${a} of shape ${fmtShape(x.shape)}`);
  let at = 0;
  return sizes.map((s) => {
    const piece = narrow(x, a, at, s);
    at += s;
    return piece;
  });
}

// ---------------------------------------------------------------- concat

/** Joins tensors of one dtype along `axis`; all other dims must match. */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  const op = 'concat';
  check(xs.length > 0, op, 'needs at least one tensor');
  checkInputs(op, xs);
  const first = xs[0];
  check(first.rank >= 1, op, 'cannot concatenate scalars');
  const a = normAxis(op, axis, first.rank);
  const shapes = () => xs.map((t) => `${fmtShape(t.shape)} ${t.dtype}`).join(', ');
  for (const t of xs) {
    check(t.dtype === first.dtype, op, () => `dtype mismatch: ${shapes()}`);
    check(t.rank === first.rank && t.shape.every((d, i) => i === a || d === first.shape[i]), op, () => `shapes ${shapes()} differ outside axis ${a}`);
  }
  const outShape = [...first.shape];
  outShape[a] = xs.reduce((s, t) => s + t.shape[a], 0);
  const out = Tensor.empty(outShape, first.dtype, first.device, op);
  if (out.size === 0) return out;
  const os = stridesOf(outShape);
  let at = 0;
  for (const t of xs) {
    const ts = stridesOf(t.shape);
    if (out.device === 'cpu') {
      const src = t.cpu, o: CPUArray = out.cpu;
      forEachCoord(t.shape, (i, c) => (o[dot(c, os) + at * os[a]] = src[i]));
    } else {
      stridedCopy(t, out, t.shape, ts, 0, os, at * os[a], op);
    }
    at += t.shape[a];
  }
  return out;
}

// ---------------------------------------------------------------- pad

/** Constant padding: pads[d] = [before, after] elements of `value` around dim d. */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  const op = 'pad';
  checkInputs(op, [x]);
  check(pads.length === x.rank, op, () => `needs ${x.rank} [before, after] pairs for shape ${fmtShape(x.shape)}, got ${pads.length}`);
  check(pads.every(([b, e]) => Number.isInteger(b) && Number.isInteger(e) && b >= 0 && e >= 0), op,
    () => `pads ${JSON.stringify(pads)} must be non-negative integers`);
  check(x.dtype === 'f32' || Number.isInteger(value), op, `value ${value} is not an integer for a ${x.dtype} tensor`);
  check(x.dtype !== 'u32' || value >= 0, op, `value ${value} is negative for a u32 tensor`);
  const outShape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  const out = Tensor.empty(outShape, x.dtype, x.device, op);
  if (out.size === 0) return out;
  const xs = stridesOf(x.shape);
  if (x.device === 'cpu') {
    const a = x.cpu, o = out.cpu;
    forEachCoord(outShape, (i, c) => {
      let src = 0;
      for (let d = 0; d < c.length; d++) {
        const ci = c[d] - pads[d][0];
        if (ci < 0 || ci >= x.shape[d]) return void (o[i] = value);
        src += ci * xs[d];
      }
      o[i] = a[src];
    });
    return out;
  }
  if (x.size === 0) {
    out.dispose();
    return full(outShape, value, { dtype: x.dtype, device: x.device });
  }
  // an unpadded dim folds into the dim before it: coordinate c·n + c' with before/after scaled by n
  const shape: number[] = [], lo: number[] = [], inShape: number[] = [];
  for (let d = 0; d < x.rank; d++) {
    const [b] = pads[d];
    const unpadded = pads[d][0] === 0 && pads[d][1] === 0;
    if (unpadded && shape.length > 0) {
      const l = shape.length - 1;
      shape[l] *= outShape[d];
      lo[l] *= outShape[d];
      inShape[l] *= outShape[d];
    } else {
      shape.push(outShape[d]);
      lo.push(b);
      inShape.push(x.shape[d]);
    }
  }
  const rank = shape.length;
  check(rank <= MAX_RANK, op, () => `${rank} padded dims in ${fmtShape(x.shape)} exceed ${MAX_RANK}`);
  const ist = stridesOf(inShape);
  const t = x.dtype;
  const k = runtime().kernel('layout.pad', padCode(t, rank));
  runtime().dispatch(k, { x: x.binding(), y: out.binding() }, { n: out.size, v: value, shape: pad8(shape), lo: pad8(lo), ins: pad8(inShape), ist: pad8(ist) }, grid1(Math.ceil(out.size / WG)));
  return out;
}

// ---------------------------------------------------------------- expand

/**
 * Materialises x broadcast to `shape` (NumPy rules: dims align on the right, a dim of x is 1 or
 * equal; -1 keeps x's dim).
 */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const op = 'expand';
  checkInputs(op, [x]);
  check(shape.length >= x.rank, op, () => `cannot expand ${fmtShape(x.shape)} to the lower rank ${fmtShape(shape)}`);
  const lead = shape.length - x.rank;
  const outShape = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  checkShape(op, outShape);
  const xs = stridesOf(x.shape);
  const inStrides = outShape.map((d, i) => {
    if (i < lead) return 0;
    const src = x.shape[i - lead];
    check(src === d || src === 1, op, () => `cannot expand ${fmtShape(x.shape)} to ${fmtShape(shape)}: dim ${i} is ${src}, not 1 or ${d}`);
    return src === 1 ? 0 : xs[i - lead];
  });
  const out = Tensor.empty(outShape, x.dtype, x.device, op);
  if (out.size === 0) return out;
  if (x.device === 'cpu') {
    const a = x.cpu, o = out.cpu;
    forEachCoord(outShape, (i, c) => (o[i] = a[dot(c, inStrides)]));
    return out;
  }
  stridedCopy(x, out, outShape, inStrides, 0, stridesOf(outShape), 0, op);
  return out;
}

/** Alias of expand (the NumPy name). */
export const broadcastTo = expand;

// ---------------------------------------------------------------- the kernels, memoised on their arguments

/** Shape and stride uniforms of up to MAX_RANK dims. */
const V = 'array<vec4<u32>, 2>';

const copyCode = memoCode((t: DType, rank: number) => linearKernel(
  { uniforms: { n: 'u32', ioff: 'u32', ooff: 'u32', shape: V, sx: V, sy: V }, read: { x: t }, write: { y: t }, wg: WG, bound: 'n' },
  `  var r = i;
  var io = p.ioff;
  var oo = p.ooff;
  ${unravelWGSL(rank, 'shape', [['io', 'sx'], ['oo', 'sy']])}
  y[oo] = x[io];`,
));

const transposeCode = memoCode((t: DType, nb: number) => workgroupKernel({
  // +1 column: no bank conflicts on the transposed read
  preamble: `var<workgroup> tile: array<array<${t}, ${TILE + 1}>, ${TILE}>;`,
  uniforms: { total: 'u32', np: 'u32', nq: 'u32', tp: 'u32', tq: 'u32', isq: 'u32', osp: 'u32', bshape: V, bsx: V, bsy: V },
  read: { x: t }, write: { y: t }, wg: [TILE, TILE_ROWS, 1], bound: 'total',
}, /* wgsl */ `  let p0 = (w % p.tp) * ${TILE}u;
  let q0 = ((w / p.tp) % p.tq) * ${TILE}u;
  var r = w / (p.tp * p.tq);
  var ib = 0u;
  var ob = 0u;
  ${nb > 0 ? unravelWGSL(nb, 'bshape', [['ib', 'bsx'], ['ob', 'bsy']]) : ''}
  for (var j = 0u; j < ${TILE}u; j += ${TILE_ROWS}u) {
    let q = q0 + lid.y + j;
    let pp = p0 + lid.x;
    if (q < p.nq && pp < p.np) { tile[lid.y + j][lid.x] = x[ib + q * p.isq + pp]; }
  }
  workgroupBarrier();
  for (var j = 0u; j < ${TILE}u; j += ${TILE_ROWS}u) {
    let pp = p0 + lid.y + j;
    let q = q0 + lid.x;
    if (q < p.nq && pp < p.np) { y[ob + pp * p.osp + q] = tile[lid.x][lid.y + j]; }
  }`));

const padCode = memoCode((t: DType, rank: number) => {
  let index = '';
  for (let d = rank - 1; d >= 0; d--) {
    const at = `[${d >> 2}][${d & 3}]`;
    // unsigned wrap-around turns a negative coordinate into a huge one, so one compare checks both ends
    index += `{ let c = ${d === 0 ? 'r' : `r % p.shape${at}`} - p.lo${at}; ${d === 0 ? '' : `r = r / p.shape${at}; `}inside = inside & (c < p.ins${at}); io += c * p.ist${at}; }\n`;
  }
  return linearKernel(
    { uniforms: { n: 'u32', v: t, shape: V, lo: V, ins: V, ist: V }, read: { x: t }, write: { y: t }, wg: WG, bound: 'n' },
    `  var r = i;
  var io = 0u;
  var inside = true;
  ${index}
  if (inside) { y[i] = x[io]; } else { y[i] = p.v; }`,
  );
});
