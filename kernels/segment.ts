// Segment reductions over a CSR index, deterministic and without float atomics: each output
// element is owned by one invocation, which walks its segment's rows in order.
//
// A CSR index over S segments is `offsets` (i32 [S+1], non-decreasing): segment s holds the
// positions offsets[s] .. offsets[s+1]−1. With a `perm` (i32 [nnz]), position t reads values row
// perm[t] (rows need not be grouped); without, position t is row t. buildCSR makes (offsets, perm)
// from an unsorted segment id per row by a stable counting sort (radix passes of kernels/sort.ts),
// so rows of one segment keep their original order and every sum is taken in increasing row order.
//
// Values are [nnz, ...F] (F = the trailing dims, flattened); per-segment outputs are [S, ...F].
// The GPU cannot throw: offsets are clamped to [0, nnz], perm entries outside [0, nnz) are skipped.
// The CPU reference (float64) checks them and throws.

import { check, checkInputs, fmtShape, normAxis } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { radixSortPairs } from './sort.js';
import { IS_NAN_WGSL, linearKernel } from './wgsl.js';
import { Tensor, shapeSize, type CPUArray, type Shape } from './tensor.js';

const WG = 256;

/** A CSR index: segment s holds positions offsets[s] .. offsets[s+1]−1; position t reads row perm[t] (or t). */
export interface CSR {
  offsets: Tensor;
  perm: Tensor;
}

// ---------------------------------------------------------------- buildCSR

/**
 * CSR of an unsorted segment id per row (`index` i32 [n], ids in [0, numSegments)): offsets
 * [S+1] and the stable permutation perm [n] listing the rows of segment 0 in increasing row order,
 * then those of segment 1, ... A stable counting sort on the GPU (LSD radix over the id bits),
 * then offsets[s] = the first position whose id is ≥ s (a binary search per segment).
 * Ids out of range: the CPU reference throws; the GPU drops them (they sit after offsets[S] in perm).
 */
export function buildCSR(index: Tensor, numSegments: number): CSR {
  const op = 'buildCSR';
  checkInputs(op, [index]);
  check(index.dtype === 'i32', op, () => `index must be i32, got ${index.dtype} ${fmtShape(index.shape)}`);
  check(Number.isInteger(numSegments) && numSegments >= 0 && numSegments < 2 ** 31, op, `numSegments must be a non-negative integer, got ${numSegments}`);
  const n = index.size, S = numSegments;
  const offsets = Tensor.empty([S + 1], 'i32', index.device, op);
  if (index.device === 'cpu') {
    const id = index.cpu, o = offsets.cpu;
    const perm = Tensor.empty([n], 'i32', 'cpu', op);
    o.fill(0);
    for (let r = 0; r < n; r++) {
      check(id[r] >= 0 && id[r] < S, op, () => `segment id ${id[r]} of row ${r} is out of range for ${S} segments (index ${fmtShape(index.shape)})`);
      o[id[r] + 1]++;
    }
    for (let s = 0; s < S; s++) o[s + 1] += o[s];
    const next = Int32Array.from(o.subarray(0, S));
    for (let r = 0; r < n; r++) perm.cpu[next[id[r]]++] = r;
    return { offsets, perm };
  }
  const rt = runtime();
  const keys = Tensor.empty([n], 'u32', 'webgpu', op), pos = Tensor.empty([n], 'i32', 'webgpu', op);
  if (n > 0) {
    const prep = rt.kernel('segment.csrKeys', linearKernel(
      { uniforms: { n: 'u32', S: 'u32' }, read: { index: 'i32' }, write: { keys: 'u32', pos: 'i32' }, wg: WG, bound: 'n' },
      '  let v = index[i];\n  keys[i] = select(p.S, u32(v), (v >= 0) & (u32(v) < p.S));\n  pos[i] = i32(i);',
    ));
    rt.dispatch(prep, { index: index.binding(), keys: keys.binding(), pos: pos.binding() }, { n, S }, grid1(Math.ceil(n / WG)));
  }
  const sorted = radixSortPairs(keys, pos, { keyBits: Math.max(1, Math.ceil(Math.log2(S + 1))) });
  keys.dispose();
  pos.dispose();
  const bounds = rt.kernel('segment.csrOffsets', linearKernel(
    { uniforms: { n: 'u32', S: 'u32' }, read: { keys: 'u32' }, write: { offsets: 'i32' }, wg: WG, bound: 'S' },
    // offsets[s] = first position with key >= s; the last invocation also writes offsets[S]
    `  var lo = 0u;
  var hi = p.n;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (keys[mid] < i) { lo = mid + 1u; } else { hi = mid; }
  }
  offsets[i] = i32(lo);
  if (i == p.S - 1u) {
    var a = lo;
    var b = p.n;
    while (a < b) {
      let mid = (a + b) / 2u;
      if (keys[mid] < p.S) { a = mid + 1u; } else { b = mid; }
    }
    offsets[p.S] = i32(a);
  }`,
  ));
  if (S === 0) rt.clear(offsets.buffer, 4);
  else rt.dispatch(bounds, { keys: sorted.keys.binding(), offsets: offsets.binding() }, { n, S }, grid1(Math.ceil(S / WG)));
  sorted.keys.dispose();
  return { offsets, perm: sorted.vals };
}

// ---------------------------------------------------------------- shared checks

interface SegLayout {
  /** independent slices (outer dims before the row axis), 1 for the public ops */
  outer: number;
  nnz: number;
  S: number;
  F: number;
}

function checkOffsets(op: string, offsets: Tensor): number {
  check(offsets.dtype === 'i32' && offsets.rank === 1 && offsets.size >= 1, op, () => `offsets must be i32 [S+1], got ${offsets.dtype} ${fmtShape(offsets.shape)}`);
  return offsets.size - 1;
}

function checkPerm(op: string, perm: Tensor | undefined, nnz: number): void {
  if (perm) check(perm.dtype === 'i32' && perm.rank === 1 && perm.size === nnz, op, () => `perm must be i32 [${nnz}] (one entry per values row), got ${perm.dtype} ${fmtShape(perm.shape)}`);
}

function layoutOf(op: string, values: Tensor, offsets: Tensor, perm?: Tensor): SegLayout {
  check(values.dtype === 'f32', op, () => `values must be f32, got ${values.dtype} ${fmtShape(values.shape)}`);
  check(values.rank >= 1, op, () => `values must be [nnz, ...], got a scalar`);
  const S = checkOffsets(op, offsets);
  const nnz = values.shape[0];
  checkPerm(op, perm, nnz);
  checkInputs(op, perm ? [values, offsets, perm] : [values, offsets]);
  return { outer: 1, nnz, S, F: shapeSize(values.shape.slice(1)) };
}

/** CPU: offsets non-decreasing within [0, nnz], perm within [0, nnz); returns the row of position t. */
function cpuRows(op: string, offsets: CPUArray, perm: CPUArray | undefined, nnz: number): (t: number) => number {
  const S = offsets.length - 1;
  check(offsets[0] >= 0 && offsets[S] <= nnz, op, () => `offsets must lie in [0, ${nnz}], got first ${offsets[0]} and last ${offsets[S]}`);
  for (let s = 0; s < S; s++) check(offsets[s] <= offsets[s + 1], op, () => `offsets must be non-decreasing: offsets[${s}] = ${offsets[s]} > offsets[${s + 1}] = ${offsets[s + 1]}`);
  if (perm) for (let t = 0; t < perm.length; t++) check(perm[t] >= 0 && perm[t] < nnz, op, () => `perm[${t}] = ${perm[t]} is out of range for ${nnz} rows`);
  return perm ? (t) => perm[t] : (t) => t;
}

// the segment's [lo, hi) clamped to [0, nnz] (reads p.nnz, offsets)
const RANGE_WGSL = `  let lo = u32(clamp(offsets[s], 0, i32(p.nnz)));
  let hi = max(lo, u32(clamp(offsets[s + 1u], 0, i32(p.nnz))));`;
const ROW_WGSL = (perm: boolean): string => (perm ? 'let row = u32(perm[t]);\n    if (row >= p.nnz) { continue; }' : 'let row = t;');

// ---------------------------------------------------------------- segment sum

/**
 * out[o, s, f] = base[o, s, f] + Σ_{t ∈ segment s} values[o, perm[t], f] (in increasing t), for
 * values viewed [outer, nnz, F]. The building block of segmentSum and of gather's backward.
 */
export function segmentSumRaw(values: Tensor, offsets: Tensor, perm: Tensor | undefined, L: SegLayout, base?: Tensor): Tensor {
  const op = 'segmentSum';
  const { outer, nnz, S, F } = L;
  const dt = values.dtype;
  const out = Tensor.empty([outer * S * F], dt, values.device, op);
  if (out.size === 0) return out;
  if (values.device === 'cpu') {
    const v = values.cpu, o = out.cpu, off = offsets.cpu;
    const rowOf = cpuRows(op, off, perm?.cpu, nnz);
    if (base) o.set(base.cpu);
    else o.fill(0);
    for (let b = 0; b < outer; b++) {
      for (let s = 0; s < S; s++) {
        for (let t = off[s]; t < off[s + 1]; t++) {
          const from = (b * nnz + rowOf(t)) * F, to = (b * S + s) * F;
          for (let f = 0; f < F; f++) o[to + f] += v[from + f];
        }
      }
    }
    return out;
  }
  const k = runtime().kernel(`segment.sum${perm ? '.perm' : ''}${base ? '.base' : ''}`, linearKernel(
    {
      uniforms: { n: 'u32', nnz: 'u32', S: 'u32', F: 'u32' },
      read: { values: dt, offsets: 'i32', ...(perm ? { perm: 'i32' } : {}), ...(base ? { base: dt } : {}) },
      write: { out: dt }, wg: WG, bound: 'n',
    },
    `  let f = i % p.F;
  let t0 = i / p.F;
  let s = t0 % p.S;
  let rows = (t0 / p.S) * p.nnz;
${RANGE_WGSL}
  var acc = ${base ? 'base[i]' : `${dt}(0)`};
  for (var t = lo; t < hi; t++) {
    ${ROW_WGSL(Boolean(perm))}
    acc += values[(rows + row) * p.F + f];
  }
  out[i] = acc;`,
  ));
  runtime().dispatch(k, {
    values: values.binding(), offsets: offsets.binding(), ...(perm ? { perm: perm.binding() } : {}), ...(base ? { base: base.binding() } : {}), out: out.binding(),
  }, { n: out.size, nnz, S, F }, grid1(Math.ceil(out.size / WG)));
  return out;
}

export interface SegmentOptions {
  /** position t of the CSR reads values row perm[t] (from buildCSR); default: row t */
  perm?: Tensor;
}

/** out[s] = Σ_{t ∈ segment s} values[perm[t]] over values [nnz, ...F]: [S, ...F], 0 for an empty segment. */
export function segmentSum(values: Tensor, offsets: Tensor, opts: SegmentOptions = {}): Tensor {
  const L = layoutOf('segmentSum', values, offsets, opts.perm);
  const flat = segmentSumRaw(values, offsets, opts.perm, L);
  const out = flat.reshape([L.S, ...values.shape.slice(1)]);
  flat.dispose();
  return out;
}

/**
 * The backward of segmentSum: dvalues[perm[t]] = g[s] for each position t of segment s; rows in no
 * segment get 0. g [S, ...F] → [nnz, ...F]. Finds each position's segment by binary search.
 */
export function segmentSumBackward(g: Tensor, offsets: Tensor, nnz: number, opts: SegmentOptions = {}): Tensor {
  const op = 'segmentSumBackward';
  const S = checkOffsets(op, offsets);
  check(g.dtype === 'f32' && g.rank >= 1 && g.shape[0] === S, op, () => `g must be f32 [${S}, ...], got ${g.dtype} ${fmtShape(g.shape)}`);
  checkPerm(op, opts.perm, nnz);
  checkInputs(op, opts.perm ? [g, offsets, opts.perm] : [g, offsets]);
  const F = shapeSize(g.shape.slice(1));
  const dv = Tensor.empty([nnz, ...g.shape.slice(1)], 'f32', g.device, op);
  if (dv.size === 0) return dv;
  const perm = opts.perm;
  if (g.device === 'cpu') {
    const off = offsets.cpu, G = g.cpu, D = dv.cpu;
    const rowOf = cpuRows(op, off, perm?.cpu, nnz);
    D.fill(0);
    for (let s = 0; s < S; s++) for (let t = off[s]; t < off[s + 1]; t++) for (let f = 0; f < F; f++) D[rowOf(t) * F + f] = G[s * F + f];
    return dv;
  }
  runtime().clear(dv.buffer, dv.size * 4);
  if (S === 0) return dv;
  const k = runtime().kernel(`segment.sumBackward${perm ? '.perm' : ''}`, linearKernel(
    { uniforms: { n: 'u32', nnz: 'u32', S: 'u32', F: 'u32' }, read: { g: 'f32', offsets: 'i32', ...(perm ? { perm: 'i32' } : {}) }, write: { dv: 'f32' }, wg: WG, bound: 'n' },
    // s = the last segment with offsets[s] <= t; t must also lie before offsets[S]
    `  let f = i % p.F;
  let t = i / p.F;
  if ((i32(t) < offsets[0]) | (i32(t) >= offsets[p.S])) { return; }
  var lo = 0u;
  var hi = p.S;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (offsets[mid] <= i32(t)) { lo = mid; } else { hi = mid; }
  }
  let row = ${perm ? 'u32(perm[t])' : 't'};
  if (row < p.nnz) { dv[row * p.F + f] = g[lo * p.F + f]; }`,
  ));
  runtime().dispatch(k, { g: g.binding(), offsets: offsets.binding(), ...(perm ? { perm: perm.binding() } : {}), dv: dv.binding() }, { n: nnz * F, nnz, S, F }, grid1(Math.ceil((nnz * F) / WG)));
  return dv;
}

// ---------------------------------------------------------------- segment max

export interface SegmentMaxResult {
  values: Tensor;
  /** i32 [S, ...F]: the values row of each maximum (the first one on ties; a NaN wins), −1 for an empty segment */
  argmax: Tensor;
}

/** out[s, f] = max_{t ∈ segment s} values[perm[t], f] with its row; an empty segment gives 0 and argmax −1. NaN propagates. */
export function segmentMax(values: Tensor, offsets: Tensor, opts: SegmentOptions = {}): SegmentMaxResult {
  const op = 'segmentMax';
  const L = layoutOf(op, values, offsets, opts.perm);
  const { nnz, S, F } = L;
  const perm = opts.perm;
  const shape = [S, ...values.shape.slice(1)];
  const out = Tensor.empty(shape, 'f32', values.device, op), arg = Tensor.empty(shape, 'i32', values.device, op);
  if (out.size === 0) return { values: out, argmax: arg };
  if (values.device === 'cpu') {
    const v = values.cpu, off = offsets.cpu, o = out.cpu, a = arg.cpu;
    const rowOf = cpuRows(op, off, perm?.cpu, nnz);
    for (let s = 0; s < S; s++) {
      for (let f = 0; f < F; f++) {
        let m = 0, best = -1;
        for (let t = off[s]; t < off[s + 1]; t++) {
          const row = rowOf(t), x = v[row * F + f];
          if (best < 0 || x > m || (Number.isNaN(x) && !Number.isNaN(m))) {
            m = x;
            best = row;
          }
        }
        o[s * F + f] = m;
        a[s * F + f] = best;
      }
    }
    return { values: out, argmax: arg };
  }
  const k = runtime().kernel(`segment.max${perm ? '.perm' : ''}`, linearKernel(
    {
      preamble: IS_NAN_WGSL,
      uniforms: { n: 'u32', nnz: 'u32', S: 'u32', F: 'u32' }, read: { values: 'f32', offsets: 'i32', ...(perm ? { perm: 'i32' } : {}) }, write: { out: 'f32', argmax: 'i32' }, wg: WG, bound: 'n',
    },
    `  let f = i % p.F;
  let s = i / p.F;
${RANGE_WGSL}
  var m = 0.0;
  var best = -1;
  for (var t = lo; t < hi; t++) {
    ${ROW_WGSL(Boolean(perm))}
    let x = values[row * p.F + f];
    if ((best < 0) | (x > m) | (is_nan(x) & !is_nan(m))) { m = x; best = i32(row); }
  }
  out[i] = m;
  argmax[i] = best;`,
  ));
  runtime().dispatch(k, { values: values.binding(), offsets: offsets.binding(), ...(perm ? { perm: perm.binding() } : {}), out: out.binding(), argmax: arg.binding() }, { n: out.size, nnz, S, F }, grid1(Math.ceil(out.size / WG)));
  return { values: out, argmax: arg };
}

/** The backward of segmentMax: dvalues[argmax[s, f], f] = g[s, f], 0 elsewhere ([nnz, ...F]). Each row lies in one segment, so no two writes meet. */
export function segmentMaxBackward(g: Tensor, argmax: Tensor, nnz: number): Tensor {
  const op = 'segmentMaxBackward';
  checkInputs(op, [g, argmax]);
  check(g.dtype === 'f32' && argmax.dtype === 'i32' && g.shape.join() === argmax.shape.join() && g.rank >= 1, op,
    () => `g (f32) and argmax (i32) must share a shape [S, ...], got ${g.dtype} ${fmtShape(g.shape)} and ${argmax.dtype} ${fmtShape(argmax.shape)}`);
  const F = shapeSize(g.shape.slice(1));
  const dv = Tensor.empty([nnz, ...g.shape.slice(1)], 'f32', g.device, op);
  if (dv.size === 0) return dv;
  if (g.device === 'cpu') {
    const D = dv.cpu, G = g.cpu, A = argmax.cpu;
    D.fill(0);
    for (let i = 0; i < G.length; i++) {
      if (A[i] < 0) continue;
      check(A[i] < nnz, op, () => `argmax ${A[i]} is out of range for ${nnz} rows`);
      D[A[i] * F + (i % F)] = G[i];
    }
    return dv;
  }
  runtime().clear(dv.buffer, dv.size * 4);
  if (g.size === 0) return dv;
  const k = runtime().kernel('segment.maxBackward', linearKernel(
    { uniforms: { n: 'u32', nnz: 'u32', F: 'u32' }, read: { g: 'f32', argmax: 'i32' }, write: { dv: 'f32' }, wg: WG, bound: 'n' },
    '  let a = argmax[i];\n  if ((a >= 0) & (a < i32(p.nnz))) { dv[u32(a) * p.F + i % p.F] = g[i]; }',
  ));
  runtime().dispatch(k, { g: g.binding(), argmax: argmax.binding(), dv: dv.binding() }, { n: g.size, nnz, F }, grid1(Math.ceil(g.size / WG)));
  return dv;
}

// ---------------------------------------------------------------- segment softmax

/**
 * Softmax over the rows of each segment, per feature column: y[t, f] = exp(v[t, f] − m_s) / Σ_{t' ∈ s} exp(v[t', f] − m_s)
 * for values [nnz, ...F] grouped by segment (CSR order, no perm: gather by perm first). Rows in no segment get 0.
 */
export function segmentSoftmax(values: Tensor, offsets: Tensor): Tensor {
  const op = 'segmentSoftmax';
  const { nnz, S, F } = layoutOf(op, values, offsets);
  const out = Tensor.empty(values.shape, 'f32', values.device, op);
  if (out.size === 0) return out;
  if (values.device === 'cpu') {
    const v = values.cpu, off = offsets.cpu, o = out.cpu;
    cpuRows(op, off, undefined, nnz);
    o.fill(0);
    for (let s = 0; s < S; s++) {
      for (let f = 0; f < F; f++) {
        let m = -Infinity;
        for (let t = off[s]; t < off[s + 1]; t++) m = Math.max(m, v[t * F + f]);
        let z = 0;
        for (let t = off[s]; t < off[s + 1]; t++) z += Math.exp(v[t * F + f] - m);
        for (let t = off[s]; t < off[s + 1]; t++) o[t * F + f] = Math.exp(v[t * F + f] - m) / z;
      }
    }
    return out;
  }
  runtime().clear(out.buffer, out.size * 4);
  if (S === 0) return out;
  const k = runtime().kernel('segment.softmax', linearKernel(
    { uniforms: { n: 'u32', nnz: 'u32', S: 'u32', F: 'u32' }, read: { values: 'f32', offsets: 'i32' }, write: { out: 'f32' }, wg: WG, bound: 'n' },
    `  let f = i % p.F;
  let s = i / p.F;
${RANGE_WGSL}
  var m = bitcast<f32>(0xff7fffffu); // lowest finite: a -inf entry gives exp(-inf) = 0
  for (var t = lo; t < hi; t++) { m = max(m, values[t * p.F + f]); }
  var z = 0.0;
  for (var t = lo; t < hi; t++) { z += exp(values[t * p.F + f] - m); }
  for (var t = lo; t < hi; t++) { out[t * p.F + f] = exp(values[t * p.F + f] - m) / z; }`,
  ));
  runtime().dispatch(k, { values: values.binding(), offsets: offsets.binding(), out: out.binding() }, { n: S * F, nnz, S, F }, grid1(Math.ceil((S * F) / WG)));
  return out;
}

/** The backward of segmentSoftmax: dx = y ⊙ (dy − Σ_{segment} dy ⊙ y), per segment and column. */
export function segmentSoftmaxBackward(y: Tensor, dy: Tensor, offsets: Tensor): Tensor {
  const op = 'segmentSoftmaxBackward';
  const { nnz, S, F } = layoutOf(op, y, offsets);
  check(dy.dtype === 'f32' && dy.shape.join() === y.shape.join(), op, () => `dy ${dy.dtype} ${fmtShape(dy.shape)} must match y ${fmtShape(y.shape)}`);
  const dx = Tensor.empty(y.shape, 'f32', y.device, op);
  if (dx.size === 0) return dx;
  if (y.device === 'cpu') {
    const Y = y.cpu, D = dy.cpu, off = offsets.cpu, X = dx.cpu;
    X.fill(0);
    for (let s = 0; s < S; s++) {
      for (let f = 0; f < F; f++) {
        let tot = 0;
        for (let t = off[s]; t < off[s + 1]; t++) tot += D[t * F + f] * Y[t * F + f];
        for (let t = off[s]; t < off[s + 1]; t++) X[t * F + f] = Y[t * F + f] * (D[t * F + f] - tot);
      }
    }
    return dx;
  }
  runtime().clear(dx.buffer, dx.size * 4);
  if (S === 0) return dx;
  const k = runtime().kernel('segment.softmaxBackward', linearKernel(
    { uniforms: { n: 'u32', nnz: 'u32', S: 'u32', F: 'u32' }, read: { y: 'f32', dy: 'f32', offsets: 'i32' }, write: { dx: 'f32' }, wg: WG, bound: 'n' },
    `  let f = i % p.F;
  let s = i / p.F;
${RANGE_WGSL}
  var tot = 0.0;
  for (var t = lo; t < hi; t++) { tot += dy[t * p.F + f] * y[t * p.F + f]; }
  for (var t = lo; t < hi; t++) { let j = t * p.F + f; dx[j] = y[j] * (dy[j] - tot); }`,
  ));
  runtime().dispatch(k, { y: y.binding(), dy: dy.binding(), offsets: offsets.binding(), dx: dx.binding() }, { n: S * F, nnz, S, F }, grid1(Math.ceil((S * F) / WG)));
  return dx;
}

// ---------------------------------------------------------------- scatter-add by CSR (gather's backward)

/**
 * out = base (or 0); out[o, indices[j], k] += src[o, j, k] along `axis` of an output of `shape`:
 * scatterAdd's semantics, and gather's backward (with no base). Computed as buildCSR(indices) + a
 * segment sum of src's rows: O(nIdx) to index instead of O(len·nIdx), and every sum is taken in
 * increasing j, so results are bit-identical across runs. Out-of-range indices: the CPU throws,
 * the GPU drops them.
 */
export function scatterAddCSR(src: Tensor, indices: Tensor, axis: number, shape: Shape, base?: Tensor): Tensor {
  const op = 'scatterAdd';
  checkInputs(op, base ? [src, indices, base] : [src, indices]);
  check(indices.dtype === 'i32', op, () => `indices must be i32, got ${indices.dtype} ${fmtShape(indices.shape)}`);
  check(shape.length >= 1, op, 'cannot scatter into a scalar');
  const a = normAxis(op, axis, shape.length);
  const want = [...shape.slice(0, a), ...indices.shape, ...shape.slice(a + 1)];
  check(want.length === src.rank && want.every((d, i) => d === src.shape[i]), op,
    () => `src ${fmtShape(src.shape)} must have shape ${fmtShape(want)} (output ${fmtShape(shape)}, indices ${fmtShape(indices.shape)}, axis ${a})`);
  if (base) check(base.dtype === src.dtype && base.shape.join() === shape.join(), op, () => `base ${base.dtype} ${fmtShape(base.shape)} must be ${src.dtype} ${fmtShape(shape)}`);
  const outer = shapeSize(shape.slice(0, a)), len = shape[a], F = shapeSize(shape.slice(a + 1));
  const nIdx = indices.size;
  const flatIdx = indices.reshape([nIdx]);
  const csr = buildCSR(flatIdx, len);
  flatIdx.dispose();
  const flat = segmentSumRaw(src, csr.offsets, csr.perm, { outer, nnz: nIdx, S: len, F }, base);
  csr.offsets.dispose();
  csr.perm.dispose();
  const out = flat.reshape(shape);
  flat.dispose();
  return out;
}
