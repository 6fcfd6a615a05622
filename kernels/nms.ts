// Non-maximum suppression on the GPU with exactly torchvision.ops.nms's semantics
// (torchvision/csrc/ops/cpu/nms_kernel.cpp): boxes are visited in descending score order, ties in
// ascending index (torchvision sorts with stable=True), and a box is suppressed when its IoU with an
// already kept box is strictly above the threshold. IoU = inter / (area_i + area_j − inter), with
// areas (x2 − x1)·(y2 − y1), in float32.
//
// Nothing is read back. Three passes:
//   1. order: the boxes by descending score, ties by ascending index (the stable radix sort of
//      kernels/sort.ts; a caller that already sorted, e.g. by a top-k, passes `order`);
//   2. mask: bit j of row i is set when sorted box j > i overlaps sorted box i above the threshold,
//      rows of ⌈N/32⌉ 32-bit words; the boxes are first gathered into score order, then each
//      workgroup stages 128 column boxes in workgroup memory for 64 rows;
//   3. sweep: one workgroup walks the words in order: one invocation resolves the 32 boxes of the
//      current word (a box is kept unless a kept box's row has marked it), then all invocations OR
//      the rows of the boxes just kept into the later words of the `removed` bitmap in workgroup
//      memory. Output: the kept indices in score order and their count, both on the device.
//
// batched_nms uses torchvision's coordinate trick (boxes + idx·(max coordinate + 1), in float32)
// when torchvision does (N·4 ≤ 4000 on the CPU), and otherwise per-class NMS (torchvision's
// _batched_nms_vanilla: IoU on the raw coordinates, boxes of different classes never suppress each
// other), both in one global score order.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { kernelHeader, linearKernel } from './wgsl.js';
import { Tensor } from './tensor.js';
import { checkBoxes, type IndexList } from './boxes.js';
import { max as reduceMax } from './reduce.js';
import { argsort, compareSortKeys } from './sort.js';

const WG = 256;
/** removed-bitmap words held in workgroup memory: up to 65,536 boxes per call */
const MAX_WORDS = 2048;
/** mask words one invocation of the IoU pass fills */
const WPW = 4;
/** rows (invocations) per workgroup of the IoU pass */
const MASK_ROWS = 64;
const f = Math.fround;

/** torchvision's batched_nms switches to per-class NMS above this many box coordinates (CPU tensors). */
export const BATCHED_NMS_TRICK_MAX = 4000;

export interface NmsOptions {
  /** keep at most this many (the post-NMS top-n); default all */
  maxOutput?: number;
  /** i32 [N]: the box indices already in descending score order (ties by ascending index) */
  order?: Tensor;
}

/**
 * torchvision.ops.nms: boxes f32 [N, 4], scores f32 [N] -> the kept indices in descending score
 * order, as an IndexList of capacity min(N, maxOutput).
 */
export function nms(boxes: Tensor, scores: Tensor, iouThreshold: number, opts: NmsOptions = {}): IndexList {
  return nmsImpl('nms', boxes, scores, null, iouThreshold, opts);
}

/** torchvision.ops.batched_nms: boxes of different categories (idxs i32 [N]) never suppress each other. */
export function batchedNms(boxes: Tensor, scores: Tensor, idxs: Tensor, iouThreshold: number, opts: NmsOptions = {}): IndexList {
  return nmsImpl('batchedNms', boxes, scores, idxs, iouThreshold, opts);
}

/** Indices in descending score order, ties by ascending index (torch.sort(descending=True, stable=True)). */
export function scoreOrder(scores: Tensor): Tensor {
  const op = 'scoreOrder';
  checkInputs(op, [scores]);
  check(scores.dtype === 'f32' && scores.rank === 1, op, () => `scores must be f32 [N], got ${scores.dtype} ${fmtShape(scores.shape)}`);
  // the stable radix sort of kernels/sort.ts (NaN above +inf, as torch.sort), on either backend
  return argsort(scores, { descending: true });
}

function nmsImpl(op: string, boxes: Tensor, scores: Tensor, idxs: Tensor | null, thr: number, opts: NmsOptions): IndexList {
  const inputs = [boxes, scores, ...(idxs ? [idxs] : []), ...(opts.order ? [opts.order] : [])];
  checkInputs(op, inputs);
  const N = checkBoxes(op, boxes);
  check(scores.dtype === 'f32' && scores.rank === 1 && scores.shape[0] === N, op, () => `scores must be f32 [${N}] for boxes ${fmtShape(boxes.shape)}, got ${scores.dtype} ${fmtShape(scores.shape)}`);
  if (idxs) check(idxs.dtype === 'i32' && idxs.rank === 1 && idxs.shape[0] === N, op, () => `idxs must be i32 [${N}] for boxes ${fmtShape(boxes.shape)}, got ${idxs.dtype} ${fmtShape(idxs.shape)}`);
  if (opts.order) check(opts.order.dtype === 'i32' && opts.order.rank === 1 && opts.order.shape[0] === N, op, () => `order must be i32 [${N}], got ${opts.order!.dtype} ${fmtShape(opts.order!.shape)}`);
  check(Number.isFinite(thr), op, `iouThreshold must be a number, got ${thr}`);
  const cap = Math.min(N, opts.maxOutput ?? N);
  check(Number.isInteger(cap) && cap >= 0, op, `maxOutput must be a non-negative integer, got ${opts.maxOutput}`);
  const trick = idxs !== null && N * 4 <= BATCHED_NMS_TRICK_MAX;
  const indices = Tensor.empty([cap], 'i32', boxes.device, op);
  const count = Tensor.empty([1], 'i32', boxes.device, op);
  if (boxes.device === 'cpu') {
    const keep = greedyNmsCPU(boxes.cpu, scores.cpu, idxs?.cpu ?? null, thr, trick, opts.order?.cpu);
    indices.cpu.fill(-1);
    const c = Math.min(cap, keep.length);
    indices.cpu.set(keep.slice(0, c));
    count.cpu[0] = c;
    return { indices, count };
  }
  if (N === 0) {
    runtime().clear(count.buffer, 4);
    return { indices, count };
  }
  const words = Math.ceil(N / 32);
  check(words <= MAX_WORDS, op, `takes at most ${MAX_WORDS * 32} boxes per call, got ${N}`);
  const order = opts.order ?? scoreOrder(scores);
  const maxc = trick ? reduceMax(boxes) : null;
  const mask = Tensor.empty([N * words], 'u32', 'webgpu', op);
  const batched = idxs !== null;
  const vanilla = batched && !trick;
  // the boxes in score order, shifted by their class offset under the coordinate trick, so that the
  // IoU pass reads them contiguously (and their classes, for per-class NMS)
  const sorted = Tensor.empty([N * 4], 'f32', 'webgpu', op);
  const sortedCls = vanilla ? Tensor.empty([N], 'i32', 'webgpu', op) : null;
  const read: Record<string, string> = { b: 'vec4<f32>', order: 'i32', ...(batched ? { idxs: 'i32' } : {}), ...(trick ? { maxc: 'f32' } : {}) };
  const shifted = trick ? 'let off = f32(idxs[j]) * (maxc[0] + 1.0);\n  sorted[i] = b[j] + vec4<f32>(off);' : 'sorted[i] = b[j];';
  const gatherK = runtime().kernel('nms.gather', linearKernel({ uniforms: { n: 'u32' }, read, write: { sorted: 'vec4<f32>', ...(vanilla ? { cls: 'i32' } : {}) }, wg: WG, bound: 'n' }, `
  let j = order[i];
  ${shifted}${vanilla ? '\n  cls[i] = idxs[j];' : ''}`));
  const gb: Record<string, ReturnType<Tensor['binding']>> = { b: boxes.binding(), order: order.binding(), sorted: sorted.binding() };
  if (batched) gb.idxs = idxs!.binding();
  if (maxc) gb.maxc = maxc.binding();
  if (sortedCls) gb.cls = sortedCls.binding();
  runtime().dispatch(gatherK, gb, { n: N }, grid1(Math.ceil(N / WG)));
  // IoU bitmask: a workgroup takes 64 rows x 128 columns (4 words); the column boxes are staged in
  // workgroup memory, each invocation owns one row
  const maskK = runtime().kernel('nms.mask', `${kernelHeader({
    uniforms: { N: 'u32', words: 'u32', thr: 'f32' }, read: { sorted: 'vec4<f32>', ...(vanilla ? { cls: 'i32' } : {}) }, write: { mask: 'u32' }, wg: MASK_ROWS,
    preamble: `var<workgroup> tile: array<vec4<f32>, ${32 * WPW}>;${vanilla ? `\nvar<workgroup> tile_cls: array<i32, ${32 * WPW}>;` : ''}`,
  })}
  let row = wid.x * ${MASK_ROWS}u + li;
  for (var t = li; t < ${32 * WPW}u; t += ${MASK_ROWS}u) {
    let col = min(wid.y * ${32 * WPW}u + t, p.N - 1u);
    tile[t] = sorted[col];${vanilla ? '\n    tile_cls[t] = cls[col];' : ''}
  }
  workgroupBarrier();
  if (row >= p.N) { return; }
  let bi = sorted[row];
  let area_i = (bi.z - bi.x) * (bi.w - bi.y);
  ${vanilla ? 'let ci = cls[row];' : ''}
  for (var ww = 0u; ww < ${WPW}u; ww++) {
    let w = wid.y * ${WPW}u + ww;
    if (w >= p.words) { break; }
    if (w * 32u + 31u <= row) { mask[row * p.words + w] = 0u; continue; }
    var bits = 0u;
    let last = min(32u, p.N - w * 32u);
    for (var t = 0u; t < last; t++) {
      let bj = tile[ww * 32u + t];
      let wh = max(min(bi.zw, bj.zw) - max(bi.xy, bj.xy), vec2<f32>(0.0));
      let inter = wh.x * wh.y;
      let area_j = (bj.z - bj.x) * (bj.w - bj.y);
      let uni = area_i + area_j - inter;
      // 0/0 is NaN in torchvision, and NaN > thr is false: never suppressed
      var over = (uni != 0.0) & (inter / uni > p.thr);
      ${vanilla ? 'over = over & (tile_cls[ww * 32u + t] == ci);' : ''}
      bits |= select(0u, 1u << t, over & (w * 32u + t > row));
    }
    mask[row * p.words + w] = bits;
  }
}`);
  const mb: Record<string, ReturnType<Tensor['binding']>> = { sorted: sorted.binding(), mask: mask.binding() };
  if (sortedCls) mb.cls = sortedCls.binding();
  runtime().dispatch(maskK, mb, { N, words, thr: f32Below(thr) }, [Math.ceil(N / MASK_ROWS), Math.ceil(words / WPW)]);
  sorted.dispose();
  sortedCls?.dispose();
  const sweep = runtime().kernel('nms.sweep', `${kernelHeader({
    uniforms: { N: 'u32', words: 'u32', cap: 'u32' }, read: { mask: 'u32', order: 'i32' }, write: { keep: 'i32', count: 'i32' }, wg: WG,
    preamble: `var<workgroup> removed: array<u32, ${MAX_WORDS}>;\nvar<workgroup> kept_bits: u32;\nvar<workgroup> kept_n: u32;`,
  })}
  for (var w = li; w < p.words; w += ${WG}u) { removed[w] = 0u; }
  if (li == 0u) { kept_n = 0u; }
  workgroupBarrier();
  for (var w = 0u; w < p.words; w++) {
    if (li == 0u) {
      var rem = removed[w];
      var bits = 0u;
      var n = kept_n;
      let last = min(32u, p.N - w * 32u);
      for (var t = 0u; t < last; t++) {
        if (((rem >> t) & 1u) == 0u) {
          if (n < p.cap) {
            let row = w * 32u + t;
            keep[n] = order[row];
            n++;
            bits |= 1u << t;
            rem |= mask[row * p.words + w];
          }
        }
      }
      kept_bits = bits;
      kept_n = n;
    }
    let kb = workgroupUniformLoad(&kept_bits);
    for (var v = w + 1u + li; v < p.words; v += ${WG}u) {
      var acc = removed[v];
      for (var t = 0u; t < 32u; t++) {
        if (((kb >> t) & 1u) != 0u) { acc |= mask[(w * 32u + t) * p.words + v]; }
      }
      removed[v] = acc;
    }
    workgroupBarrier();
  }
  let total = workgroupUniformLoad(&kept_n);
  for (var j = total + li; j < p.cap; j += ${WG}u) { keep[j] = -1; }
  if (li == 0u) { count[0] = i32(total); }
}`);
  if (cap === 0) runtime().clear(count.buffer, 4);
  else runtime().dispatch(sweep, { mask: mask.binding(), order: order.binding(), keep: indices.binding(), count: count.binding() }, { N, words, cap }, [1]);
  mask.dispose();
  maxc?.dispose();
  if (!opts.order) order.dispose();
  return { indices, count };
}

/**
 * The float32 t with (v > t) ⇔ (v > thr) for every float32 v: torchvision compares the float32 IoU
 * with the threshold as a double, so a threshold that rounds up in float32 (0.3 -> 0.30000001) must
 * move one step down.
 */
export function f32Below(thr: number): number {
  const t = f(thr);
  if (t <= thr || !Number.isFinite(t)) return t;
  const bits = new Float32Array([t]);
  const u = new Int32Array(bits.buffer);
  u[0] += t > 0 ? -1 : 1;
  return t === 0 ? -1.401298464324817e-45 : bits[0];
}

/**
 * The plain greedy reference, in float32 arithmetic as torchvision's CPU kernel: visit boxes in
 * descending score order (stable), keep a box unless a kept box overlaps it with IoU > thr.
 */
export function greedyNmsCPU(b: ArrayLike<number>, s: ArrayLike<number>, idxs: ArrayLike<number> | null, thr: number, trick: boolean, order?: ArrayLike<number>): number[] {
  const N = s.length;
  // float32 storage rounds every coordinate as Math.fround would
  const boxes = Float32Array.from(b);
  if (trick && idxs && N > 0) {
    const maxc = boxes.reduce((a, v) => Math.max(a, v), -Infinity);
    for (let i = 0; i < boxes.length; i++) boxes[i] = boxes[i] + f(idxs[i >> 2] * f(maxc + 1));
  }
  const area = new Float32Array(N);
  for (let i = 0; i < N; i++) area[i] = f(boxes[i * 4 + 2] - boxes[i * 4]) * f(boxes[i * 4 + 3] - boxes[i * 4 + 1]);
  // descending, NaN first (torch.sort counts NaN as the largest), ties by ascending index
  const ord = order ? Int32Array.from(order) : Int32Array.from({ length: N }, (_, i) => i).sort((x, y) => compareSortKeys(s[y], s[x]) || x - y);
  const suppressed = new Uint8Array(N), kept = new Uint8Array(N);
  // one greedy pass over `list` (indices in visit order)
  const greedy = (list: Int32Array) => {
    for (let a = 0; a < list.length; a++) {
      const i = list[a];
      if (suppressed[i]) continue;
      kept[i] = 1;
      const x1 = boxes[i * 4], y1 = boxes[i * 4 + 1], x2 = boxes[i * 4 + 2], y2 = boxes[i * 4 + 3], ai = area[i];
      for (let c = a + 1; c < list.length; c++) {
        const j = list[c];
        if (suppressed[j]) continue;
        // iouF32 (kernels/boxes.ts), inlined: this loop is the detectors' host-side hot spot
        const w = Math.max(f(Math.min(x2, boxes[j * 4 + 2]) - Math.max(x1, boxes[j * 4])), 0);
        const h = Math.max(f(Math.min(y2, boxes[j * 4 + 3]) - Math.max(y1, boxes[j * 4 + 1])), 0);
        const inter = f(w * h);
        if (f(inter / f(f(ai + area[j]) - inter)) > thr) suppressed[j] = 1;
      }
    }
  };
  if (idxs !== null && !trick) {
    // per-class NMS: boxes of different classes never meet, so each class is its own greedy pass
    const byClass = new Map<number, number[]>();
    for (let a = 0; a < N; a++) {
      const c = idxs[ord[a]];
      let list = byClass.get(c);
      if (!list) byClass.set(c, (list = []));
      list.push(ord[a]);
    }
    for (const list of byClass.values()) greedy(Int32Array.from(list));
  } else {
    greedy(ord);
  }
  const keep: number[] = [];
  for (let a = 0; a < N; a++) if (kept[ord[a]]) keep.push(ord[a]);
  return keep;
}
