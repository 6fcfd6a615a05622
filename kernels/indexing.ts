// Indexing kernels: gather (index_select), its backward scatterAdd, and oneHot. Indices are i32.
//
// Out-of-range indices: the CPU reference throws (naming the op, the index and the axis length);
// the GPU cannot throw from a kernel, so it makes the problem visible instead of reading stray
// memory: gather writes NaN (f32) or 0 (i32/u32), scatterAdd drops the contribution, oneHot
// writes a row of `off`.

import { check, checkInputs, fmtShape, normAxis } from './errors.js';
import { runtime, grid1, LINEAR_WG } from './runtime.js';
import { Tensor, shapeSize, type CPUArray } from './tensor.js';
import { scatterAddCSR } from './segment.js';

const WG = 256;

/** x viewed as [outer, len, inner] around `axis`. */
function around(shape: readonly number[], axis: number): { outer: number; len: number; inner: number } {
  return { outer: shapeSize(shape.slice(0, axis)), len: shape[axis], inner: shapeSize(shape.slice(axis + 1)) };
}

/** CPU: throws on the first index outside [0, len). */
function checkIndices(op: string, idx: CPUArray, len: number, what: (v: number) => string): void {
  for (const v of idx) check(v >= 0 && v < len, op, () => what(v));
}

const axisRange = (axis: number, shape: readonly number[]) => (v: number): string =>
  `index ${v} is out of range for axis ${axis} of length ${shape[axis]} (shape ${fmtShape(shape)})`;

// ---------------------------------------------------------------- gather

/** y[o, j, k] = x[o, indices[j], k]: out shape = x.shape[:axis] + indices.shape + x.shape[axis+1:]. */
export function gather(x: Tensor, indices: Tensor, axis: number): Tensor {
  const op = 'gather';
  checkInputs(op, [x, indices]);
  check(indices.dtype === 'i32', op, () => `indices must be i32, got ${indices.dtype} ${fmtShape(indices.shape)}`);
  check(x.rank >= 1, op, 'cannot gather from a scalar');
  const a = normAxis(op, axis, x.rank);
  const { outer, len, inner } = around(x.shape, a);
  const nIdx = indices.size;
  const out = Tensor.empty([...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)], x.dtype, x.device, op);
  if (out.size === 0) return out;
  if (x.device === 'cpu') {
    const src = x.cpu, idx = indices.cpu, o = out.cpu;
    checkIndices(op, idx, len, axisRange(a, x.shape));
    for (let b = 0; b < outer; b++) {
      for (let j = 0; j < nIdx; j++) {
        const from = (b * len + idx[j]) * inner, to = (b * nIdx + j) * inner;
        for (let k = 0; k < inner; k++) o[to + k] = src[from + k];
      }
    }
    return out;
  }
  const t = x.dtype;
  const k = runtime().kernel('indexing.gather', t, () => /* wgsl */ `
struct P { n: u32, inner: u32, nidx: u32, len: u32, fill: ${t} }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${t}>;
@group(0) @binding(2) var<storage, read> indices: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<${t}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (${LINEAR_WG}) * ${WG}u + li;
  if (i >= p.n) { return; }
  let k = i % p.inner;
  let t = i / p.inner;
  let idx = indices[t % p.nidx];
  if (idx < 0 || u32(idx) >= p.len) { y[i] = p.fill; return; }
  y[i] = x[((t / p.nidx) * p.len + u32(idx)) * p.inner + k];
}`);
  const fill = t === 'f32' ? NaN : 0;
  runtime().dispatch(k, [x.binding(), indices.binding(), out.binding()], { n: out.size, inner, nidx: nIdx, len, fill }, grid1(Math.ceil(out.size / WG)));
  return out;
}

// ---------------------------------------------------------------- scatterAdd

/**
 * out = base; out[o, indices[j], k] += src[o, j, k] — the backward of gather.
 *
 * Deterministic on the GPU (bit-identical across runs) without float atomics: a stable counting
 * sort groups the positions of equal indices (buildCSR), then each invocation owns one output
 * element and sums its segment in increasing j (kernels/segment.ts scatterAddCSR).
 */
export function scatterAdd(base: Tensor, indices: Tensor, src: Tensor, axis: number): Tensor {
  const op = 'scatterAdd';
  checkInputs(op, [base, indices, src]);
  check(indices.dtype === 'i32', op, () => `indices must be i32, got ${indices.dtype} ${fmtShape(indices.shape)}`);
  check(src.dtype === base.dtype, op, () => `dtype mismatch: base ${base.dtype} ${fmtShape(base.shape)}, src ${src.dtype} ${fmtShape(src.shape)}`);
  check(base.rank >= 1, op, 'cannot scatter into a scalar');
  const a = normAxis(op, axis, base.rank);
  const want = [...base.shape.slice(0, a), ...indices.shape, ...base.shape.slice(a + 1)];
  check(want.length === src.rank && want.every((d, i) => d === src.shape[i]), op,
    () => `src ${fmtShape(src.shape)} must have shape ${fmtShape(want)} (base ${fmtShape(base.shape)}, indices ${fmtShape(indices.shape)}, axis ${a})`);
  if (base.device !== 'cpu') return scatterAddGPU(base, indices, src, a);
  const { outer, len, inner } = around(base.shape, a);
  const nIdx = indices.size;
  const out = Tensor.empty(base.shape, base.dtype, base.device, op);
  if (out.size === 0) return out;
  const idx = indices.cpu, s = src.cpu, o = out.cpu;
  checkIndices(op, idx, len, axisRange(a, base.shape));
  o.set(base.cpu);
  for (let b = 0; b < outer; b++) {
    for (let j = 0; j < nIdx; j++) {
      const from = (b * nIdx + j) * inner, to = (b * len + idx[j]) * inner;
      for (let k = 0; k < inner; k++) o[to + k] += s[from + k];
    }
  }
  return out;
}

/** scatterAdd on the GPU: by a CSR index of `indices` and a segment sum (kernels/segment.ts). */
function scatterAddGPU(base: Tensor, indices: Tensor, src: Tensor, axis: number): Tensor {
  return scatterAddCSR(src, indices, axis, base.shape, base);
}

// ---------------------------------------------------------------- oneHot

export interface OneHotOptions {
  on?: number;
  off?: number;
}

/** y[..., c] = labels[...] == c ? on : off, as f32 [...labels.shape, numClasses]. */
export function oneHot(labels: Tensor, numClasses: number, opts: OneHotOptions = {}): Tensor {
  const op = 'oneHot';
  checkInputs(op, [labels]);
  check(labels.dtype === 'i32', op, () => `labels must be i32, got ${labels.dtype} ${fmtShape(labels.shape)}`);
  check(Number.isInteger(numClasses) && numClasses >= 1, op, `numClasses must be a positive integer, got ${numClasses}`);
  const on = opts.on ?? 1, off = opts.off ?? 0;
  const out = Tensor.empty([...labels.shape, numClasses], 'f32', labels.device, op);
  if (out.size === 0) return out;
  if (labels.device === 'cpu') {
    const l = labels.cpu, o = out.cpu;
    checkIndices(op, l, numClasses, (v) => `label ${v} is out of range for ${numClasses} classes (labels ${fmtShape(labels.shape)})`);
    o.fill(off);
    for (let r = 0; r < l.length; r++) o[r * numClasses + l[r]] = on;
    return out;
  }
  const k = runtime().kernel('indexing.oneHot', '', () => /* wgsl */ `
struct P { n: u32, classes: u32, on: f32, off: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (${LINEAR_WG}) * ${WG}u + li;
  if (i >= p.n) { return; }
  y[i] = select(p.off, p.on, labels[i / p.classes] == i32(i % p.classes));
}`);
  runtime().dispatch(k, [labels.binding(), out.binding()], { n: out.size, classes: numClasses, on, off }, grid1(Math.ceil(out.size / WG)));
  return out;
}
