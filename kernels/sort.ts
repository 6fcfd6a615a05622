// Sort and top-k on the GPU with an index payload: a stable LSD radix sort (4-bit digits) of u32
// keys carrying an i32 payload, and on top of it sort / argsort / topk of f32 tensors along an axis.
//
// Each radix pass is a stable counting sort over tiles of 1024 elements (128 invocations, each
// owning a contiguous run of 8):
//   count   each invocation counts the digits of its run; per tile and digit the total goes to
//           table[d · tiles + b]                                    (no atomics)
//   scan    one workgroup: exclusive prefix sum of the table (digit-major, tile-minor)
//   scatter per digit, an exclusive prefix over the invocations' counts in workgroup memory; each
//           invocation then writes its run in order from table[d · tiles + b] + its prefix
// So equal keys keep their input order, and the result never depends on scheduling.
//
// Floats map to order-preserving u32 keys (flip all bits of negatives, set the sign bit of the
// rest). NaN: every NaN compares greater than +inf (torch.sort / torch.topk): last in ascending
// order, first in descending order; NaNs tie with each other (so they keep index order). -0 and +0
// are equal. Descending order inverts the key, not the tie rule: equal keys stay in increasing
// index order in both directions (torch.sort(stable=True); NMS and proposal selection rely on it).
// Batched rows [B, n] sort as one array of n·B elements: the key passes first, then stable passes
// on the row number (payload / n), which regroups each row with its order intact.

import { check, checkInputs, fmtShape, normAxis } from './errors.js';
import { permute } from './layout.js';
import { runtime, grid1 } from './runtime.js';
import { kernelHeader, linearKernel } from './wgsl.js';
import { Tensor } from './tensor.js';

/** Invocations per radix workgroup, elements per invocation (a contiguous run), digit bits. */
const RT = 128;
const RUN = 8;
const TILE = RT * RUN;
const BITS = 4;
const BINS = 1 << BITS;
const WG = 256;

// ---------------------------------------------------------------- radix sort of (u32 key, i32 value)

/** A digit source: the key itself, or the row of the payload (payload / rowLen). */
type Source = 'key' | 'row';

// Shared by both passes: each invocation counts the digits of its run of RUN elements into its own
// column of cnt (digit-major: cnt[d * RT + t]).
const RADIX_PREAMBLE = /* wgsl */ `var<workgroup> cnt: array<u32, ${BINS * RT}>;
fn digit_of(e: u32) -> u32 {
  let k = select(keys[e], u32(vals[e]) / p.rowLen, p.mode == 1u);
  return (k >> p.shift) & ${BINS - 1}u;
}`;

const RADIX_COUNT_BODY = /* wgsl */ `
  let b = wid.x + wid.y * nwg.x;
  if (b >= p.nb) { return; }
  let first = b * ${TILE}u + li * ${RUN}u;
  let last = min(first + ${RUN}u, p.n);
  var c: array<u32, ${BINS}>;
  for (var d = 0u; d < ${BINS}u; d++) { c[d] = 0u; }
  for (var e = first; e < last; e++) { let d = digit_of(e); c[d] = c[d] + 1u; }
  for (var d = 0u; d < ${BINS}u; d++) { cnt[d * ${RT}u + li] = c[d]; }
  workgroupBarrier();`;

const countKernel = (): string => `${kernelHeader({
  uniforms: { n: 'u32', nb: 'u32', shift: 'u32', mode: 'u32', rowLen: 'u32' },
  read: { keys: 'u32', vals: 'i32' },
  write: { table: 'u32' },
  wg: RT,
  preamble: RADIX_PREAMBLE,
})}${RADIX_COUNT_BODY}
  if (li < ${BINS}u) {
    var s = 0u;
    for (var t = 0u; t < ${RT}u; t++) { s += cnt[li * ${RT}u + t]; }
    table[li * p.nb + b] = s;
  }
}`;

const scatterKernel = (): string => `${kernelHeader({
  uniforms: { n: 'u32', nb: 'u32', shift: 'u32', mode: 'u32', rowLen: 'u32' },
  read: { keys: 'u32', vals: 'i32', table: 'u32' },
  write: { keysOut: 'u32', valsOut: 'i32' },
  wg: RT,
  preamble: RADIX_PREAMBLE,
})}${RADIX_COUNT_BODY}
  // each digit's row: exclusive prefix over the invocations, so runs keep their order
  if (li < ${BINS}u) {
    var s = 0u;
    for (var t = 0u; t < ${RT}u; t++) { let v = cnt[li * ${RT}u + t]; cnt[li * ${RT}u + t] = s; s += v; }
  }
  workgroupBarrier();
  var at: array<u32, ${BINS}>;
  for (var d = 0u; d < ${BINS}u; d++) { at[d] = table[d * p.nb + b] + cnt[d * ${RT}u + li]; }
  for (var e = first; e < last; e++) {
    let d = digit_of(e);
    keysOut[at[d]] = keys[e];
    valsOut[at[d]] = vals[e];
    at[d] = at[d] + 1u;
  }
}`;

/**
 * Exclusive prefix sum of `data` [T] (u32) in place, by one workgroup: each invocation sums a
 * contiguous chunk, the 256 chunk sums are scanned in workgroup memory, then each chunk is
 * rewritten with its offset. Integer, so exact; one dispatch.
 */
const scanKernel = (): string => `${kernelHeader({
  uniforms: { T: 'u32', chunk: 'u32' },
  write: { data: 'u32' },
  wg: WG,
  preamble: `var<workgroup> sh: array<u32, ${WG}>;`,
})}
  let lo = min(li * p.chunk, p.T);
  let hi = min(lo + p.chunk, p.T);
  var s = 0u;
  for (var j = lo; j < hi; j++) { s += data[j]; }
  sh[li] = s;
  workgroupBarrier();
  for (var k = 1u; k < ${WG}u; k = k << 1u) {
    var add = 0u;
    if (li >= k) { add = sh[li - k]; }
    workgroupBarrier();
    sh[li] += add;
    workgroupBarrier();
  }
  var acc = sh[li] - s;
  for (var j = lo; j < hi; j++) {
    let v = data[j];
    data[j] = acc;
    acc += v;
  }
}`;

/** In-place exclusive prefix sum of a u32 GPU buffer of T elements (one workgroup, exact). */
export function exclusiveScanU32(data: Tensor, T = data.size): void {
  check(data.dtype === 'u32' || data.dtype === 'i32', 'exclusiveScan', `needs an integer tensor, got ${data.dtype} ${fmtShape(data.shape)}`);
  if (T === 0) return;
  const k = runtime().kernel('sort.scan', scanKernel());
  runtime().dispatch(k, { data: { ...data.binding(), dtype: 'u32' } }, { T, chunk: Math.ceil(T / WG) }, [1]);
}

function radixPass(keys: Tensor, vals: Tensor, keysOut: Tensor, valsOut: Tensor, table: Tensor, n: number, shift: number, source: Source, rowLen: number): void {
  const nb = Math.ceil(n / TILE);
  const u = { n, nb, shift, mode: source === 'row' ? 1 : 0, rowLen: Math.max(rowLen, 1) };
  const rt = runtime();
  rt.dispatch(rt.kernel('sort.radix.count', countKernel()), { keys: keys.binding(), vals: vals.binding(), table: table.binding() }, u, grid1(nb));
  exclusiveScanU32(table, BINS * nb);
  rt.dispatch(rt.kernel('sort.radix.scatter', scatterKernel()), {
    keys: keys.binding(), vals: vals.binding(), table: table.binding(), keysOut: keysOut.binding(), valsOut: valsOut.binding(),
  }, u, grid1(nb));
}

/** Bits needed to write v (≥ 1). */
const bitsFor = (v: number): number => Math.max(1, Math.ceil(Math.log2(v + 1)));

export interface RadixPlan {
  /** low bits of the key that vary (the rest must be 0): 32 for arbitrary keys */
  keyBits: number;
  /** rows of rowLen elements each: after the key passes, stable passes on payload / rowLen (payload = flat position) */
  rows?: number;
  rowLen?: number;
}

/**
 * Stable sort of (keys u32 [n], vals i32 [n]) by key on the GPU: LSD radix, 4 bits a pass.
 * Returns new tensors (the inputs are left as they were). With `rows`, `vals` must be the flat
 * positions 0..n−1 and the result is grouped by row (payload / rowLen), each row sorted by key.
 */
export function radixSortPairs(keys: Tensor, vals: Tensor, plan: RadixPlan): { keys: Tensor; vals: Tensor } {
  const op = 'radixSortPairs';
  checkInputs(op, [keys, vals]);
  check(keys.dtype === 'u32' && vals.dtype === 'i32', op, () => `needs u32 keys and i32 values, got ${keys.dtype} ${fmtShape(keys.shape)} and ${vals.dtype} ${fmtShape(vals.shape)}`);
  check(keys.size === vals.size, op, () => `keys ${fmtShape(keys.shape)} and values ${fmtShape(vals.shape)} differ in size`);
  check(plan.keyBits >= 0 && plan.keyBits <= 32, op, `keyBits must be in [0, 32], got ${plan.keyBits}`);
  const n = keys.size;
  const passes: [number, Source][] = [];
  for (let s = 0; s < plan.keyBits; s += BITS) passes.push([s, 'key']);
  if ((plan.rows ?? 1) > 1) for (let s = 0; s < bitsFor(plan.rows! - 1); s += BITS) passes.push([s, 'row']);
  if (keys.device === 'cpu') {
    const K = keys.cpu, V = vals.cpu;
    const order = Array.from({ length: n }, (_, i) => i);
    const rowOf = (i: number): number => (plan.rows && plan.rows > 1 ? Math.floor(V[i] / plan.rowLen!) : 0);
    order.sort((a, b) => rowOf(a) - rowOf(b) || K[a] - K[b]); // Array.prototype.sort is stable
    const ko = Tensor.empty([n], 'u32', 'cpu', op), vo = Tensor.empty([n], 'i32', 'cpu', op);
    order.forEach((src, i) => {
      ko.cpu[i] = K[src];
      vo.cpu[i] = V[src];
    });
    return { keys: ko, vals: vo };
  }
  let k0 = Tensor.empty([n], 'u32', 'webgpu', op), v0 = Tensor.empty([n], 'i32', 'webgpu', op);
  runtime().copy(keys.buffer, 0, k0.buffer, 0, 4 * n);
  runtime().copy(vals.buffer, 0, v0.buffer, 0, 4 * n);
  if (n <= 1 || passes.length === 0) return { keys: k0, vals: v0 };
  let k1 = Tensor.empty([n], 'u32', 'webgpu', op), v1 = Tensor.empty([n], 'i32', 'webgpu', op);
  const table = Tensor.empty([BINS * Math.ceil(n / TILE)], 'u32', 'webgpu', op);
  for (const [shift, source] of passes) {
    radixPass(k0, v0, k1, v1, table, n, shift, source, plan.rowLen ?? n);
    [k0, k1] = [k1, k0];
    [v0, v1] = [v1, v0];
  }
  k1.dispose();
  v1.dispose();
  table.dispose();
  return { keys: k0, vals: v0 };
}

// ---------------------------------------------------------------- f32 keys

/** Order-preserving u32 of an f32 (NaN canonical and greatest, −0 = +0); inverted for descending. */
const KEY_WGSL = /* wgsl */ `fn order_key(v: f32, desc: u32) -> u32 {
  var b = bitcast<u32>(v);
  b = select(b, 0x7fc00000u, (b & 0x7fffffffu) > 0x7f800000u); // NaN, by the bits (x != x may be folded)
  b = select(b, 0u, v == 0.0);
  let k = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
  return select(k, ~k, desc != 0u);
}`;

/** The CPU twin of order_key: compares float64 values with NaN above +inf (all NaNs equal) and −0 = +0 (torch.sort's order). */
export function compareSortKeys(a: number, b: number): number {
  const na = Number.isNaN(a), nb = Number.isNaN(b);
  if (na || nb) return Number(na) - Number(nb);
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface SortOptions {
  /** the axis to sort along (default: the last) */
  axis?: number;
  /** largest first (default false) */
  descending?: boolean;
  /** an i32 tensor of x's shape whose entries travel with the keys, returned as `indices` (default: the index along the axis) */
  payload?: Tensor;
}

export interface SortResult {
  values: Tensor;
  /** i32: the index along the axis of each sorted value (or its payload) */
  indices: Tensor;
}

/**
 * Stable sort of x along an axis, as torch.sort(x, dim, descending, stable=True): equal values keep
 * increasing index order in both directions; NaN is greater than +inf; −0 equals +0.
 */
export function sort(x: Tensor, opts: SortOptions = {}): SortResult {
  return sortImpl('sort', x, opts, undefined);
}

/** The indices of sort(x, opts). */
export function argsort(x: Tensor, opts: Omit<SortOptions, 'payload'> = {}): Tensor {
  const { values, indices } = sortImpl('argsort', x, opts, undefined);
  values.dispose();
  return indices;
}

export interface TopkOptions {
  axis?: number;
  /** the k largest (default) or the k smallest */
  largest?: boolean;
}

/**
 * The k largest (or smallest) entries along an axis, in sorted order, as torch.topk(sorted=True):
 * values and i32 indices of shape x.shape with the axis replaced by k. Ties go to the lower index;
 * NaN counts as the largest value.
 */
export function topk(x: Tensor, k: number, opts: TopkOptions = {}): SortResult {
  return sortImpl('topk', x, { axis: opts.axis, descending: opts.largest ?? true }, k);
}

function sortImpl(op: string, x: Tensor, opts: SortOptions, k: number | undefined): SortResult {
  checkInputs(op, opts.payload ? [x, opts.payload] : [x]);
  check(x.dtype === 'f32', op, () => `needs an f32 tensor, got ${x.dtype} ${fmtShape(x.shape)}`);
  check(x.rank >= 1, op, () => `needs a tensor of rank >= 1, got shape ${fmtShape(x.shape)}`);
  const axis = normAxis(op, opts.axis ?? -1, x.rank);
  const n = x.shape[axis];
  if (k !== undefined) check(Number.isInteger(k) && k >= 0 && k <= n, op, () => `k = ${k} must be an integer in [0, ${n}] (axis ${axis} of ${fmtShape(x.shape)})`);
  const payload = opts.payload;
  if (payload) check(payload.dtype === 'i32' && payload.shape.join() === x.shape.join(), op, () => `payload must be i32 of shape ${fmtShape(x.shape)}, got ${payload.dtype} ${fmtShape(payload.shape)}`);
  const last = axis === x.rank - 1;
  if (!last) {
    // move the axis last, sort, move it back
    const perm = x.shape.map((_, i) => i).filter((i) => i !== axis).concat(axis);
    const inv = perm.map((_, i) => perm.indexOf(i));
    const xt = permute(x, perm), pt = payload ? permute(payload, perm) : undefined;
    const r = sortImpl(op, xt, { descending: opts.descending, payload: pt }, k);
    xt.dispose();
    pt?.dispose();
    const out = { values: permute(r.values, inv), indices: permute(r.indices, inv) };
    r.values.dispose();
    r.indices.dispose();
    return out;
  }
  const kk = k ?? n;
  const rows = n === 0 ? 0 : x.size / n;
  const outShape = [...x.shape.slice(0, -1), kk];
  const values = Tensor.empty(outShape, 'f32', x.device, op);
  const indices = Tensor.empty(outShape, 'i32', x.device, op);
  if (values.size === 0) return { values, indices };
  const desc = Boolean(opts.descending);
  if (x.device === 'cpu') {
    const X = x.cpu, P = payload?.cpu;
    const order = Array.from({ length: n }, (_, i) => i);
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      const dir = desc ? -1 : 1;
      const sorted = [...order].sort((a, b) => dir * compareSortKeys(X[base + a], X[base + b]) || a - b);
      for (let j = 0; j < kk; j++) {
        values.cpu[r * kk + j] = X[base + sorted[j]];
        indices.cpu[r * kk + j] = P ? P[base + sorted[j]] : sorted[j];
      }
    }
    return { values, indices };
  }
  const total = x.size;
  const rt = runtime();
  const keys = Tensor.empty([total], 'u32', 'webgpu', op), pos = Tensor.empty([total], 'i32', 'webgpu', op);
  const prep = rt.kernel('sort.keys', linearKernel(
    { preamble: KEY_WGSL, uniforms: { n: 'u32', desc: 'u32' }, read: { x: 'f32' }, write: { keys: 'u32', pos: 'i32' }, wg: WG, bound: 'n' },
    '  keys[i] = order_key(x[i], p.desc);\n  pos[i] = i32(i);',
  ));
  rt.dispatch(prep, { x: x.binding(), keys: keys.binding(), pos: pos.binding() }, { n: total, desc: Number(desc) }, grid1(Math.ceil(total / WG)));
  const sorted = radixSortPairs(keys, pos, { keyBits: 32, rows, rowLen: n });
  keys.dispose();
  pos.dispose();
  // values by gathering x (exact, NaN bits kept), indices as position within the row or the payload
  const out = rt.kernel(`sort.gather${payload ? '.payload' : ''}`, linearKernel(
    {
      uniforms: { m: 'u32', n: 'u32', k: 'u32' },
      read: { x: 'f32', order: 'i32', ...(payload ? { payload: 'i32' } : {}) },
      write: { values: 'f32', indices: 'i32' },
      wg: WG, bound: 'm',
    },
    `  let r = i / p.k;
  let src = order[r * p.n + i % p.k];
  values[i] = x[src];
  indices[i] = ${payload ? 'payload[src]' : 'src - i32(r * p.n)'};`,
  ));
  rt.dispatch(out, {
    x: x.binding(), order: sorted.vals.binding(), ...(payload ? { payload: payload.binding() } : {}), values: values.binding(), indices: indices.binding(),
  }, { m: values.size, n, k: kk }, grid1(Math.ceil(values.size / WG)));
  sorted.keys.dispose();
  sorted.vals.dispose();
  return { values, indices };
}
