// Box kernels with torchvision's semantics (torchvision/ops/boxes.py, models/detection/_utils.py,
// ops/poolers.py): pairwise IoU, the BoxCoder's encode and decode, clipping to the image, the
// small-box filter, the FPN level mapper, and a stream compaction that turns a mask into an index
// list and a count on the GPU (no readback).
//
// Boxes are (x1, y1, x2, y2) with no +1 (area = (x2 − x1)·(y2 − y1)). The CPU paths that feed a
// decision (IoU, which NMS thresholds, the floor of the level mapper, the min_size test) round every
// step to float32 (Math.fround), as torchvision's float32 kernels do, so that those decisions agree
// exactly with torchvision; the box coder's CPU path is float64, compared with tolerances.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { kernelHeader, linearKernel } from './wgsl.js';
import { Tensor } from './tensor.js';

const WG = 256;
const f = Math.fround;

export function checkBoxes(op: string, boxes: Tensor, what = 'boxes'): number {
  check(boxes.dtype === 'f32' && boxes.rank === 2 && boxes.shape[1] === 4, op, () => `${what} must be f32 [N, 4] (x1, y1, x2, y2), got ${boxes.dtype} ${fmtShape(boxes.shape)}`);
  return boxes.shape[0];
}

// ---------------------------------------------------------------- IoU

/**
 * IoU of box i of A with box j of B (flat x1, y1, x2, y2 arrays) in float32 arithmetic, every step
 * rounded as torchvision's float32 kernels (box_iou, nms): inter / (area_i + area_j − inter).
 */
export function iouF32(A: ArrayLike<number>, i: number, B: ArrayLike<number>, j: number): number {
  const areaA = f(f(A[i * 4 + 2] - A[i * 4]) * f(A[i * 4 + 3] - A[i * 4 + 1]));
  const areaB = f(f(B[j * 4 + 2] - B[j * 4]) * f(B[j * 4 + 3] - B[j * 4 + 1]));
  const w = Math.max(f(Math.min(A[i * 4 + 2], B[j * 4 + 2]) - Math.max(A[i * 4], B[j * 4])), 0);
  const h = Math.max(f(Math.min(A[i * 4 + 3], B[j * 4 + 3]) - Math.max(A[i * 4 + 1], B[j * 4 + 1])), 0);
  const inter = f(w * h);
  return f(inter / f(f(areaA + areaB) - inter));
}

/** torchvision.ops.box_iou: [N, 4] x [M, 4] -> [N, M]; 0/0 (two empty boxes) is NaN as in torchvision. */
export function boxIou(a: Tensor, b: Tensor): Tensor {
  const op = 'boxIou';
  checkInputs(op, [a, b]);
  const N = checkBoxes(op, a, 'boxes1'), M = checkBoxes(op, b, 'boxes2');
  const out = Tensor.empty([N, M], 'f32', a.device, op);
  if (out.size === 0) return out;
  if (a.device === 'cpu') {
    const A = a.cpu, B = b.cpu, o = out.cpu;
    for (let i = 0; i < N; i++) for (let j = 0; j < M; j++) o[i * M + j] = iouF32(A, i, B, j);
    return out;
  }
  const k = runtime().kernel('boxes.iou', linearKernel({ uniforms: { n: 'u32', M: 'u32', nan: 'f32' }, read: { a: 'vec4<f32>', b: 'vec4<f32>' }, write: { iou: 'f32' }, wg: WG, bound: 'n' }, /* wgsl */ `
  let p1 = a[i / p.M];
  let p2 = b[i % p.M];
  let area1 = (p1.z - p1.x) * (p1.w - p1.y);
  let area2 = (p2.z - p2.x) * (p2.w - p2.y);
  let wh = max(min(p1.zw, p2.zw) - max(p1.xy, p2.xy), vec2<f32>(0.0));
  let inter = wh.x * wh.y;
  let uni = area1 + area2 - inter;
  iou[i] = select(inter / uni, p.nan, (uni == 0.0) & (inter == 0.0));`));
  runtime().dispatch(k, { a: a.binding(), b: b.binding(), iou: out.binding() }, { n: out.size, M, nan: NaN }, grid1(Math.ceil(out.size / WG)));
  return out;
}

// ---------------------------------------------------------------- the box coder

export type BoxWeights = readonly [number, number, number, number];

/**
 * torchvision's encode_boxes: the regression targets of `reference` (ground truth) [N, 4] relative
 * to `proposals` [N, 4]: dx = wx·(gx − px)/pw, dy likewise, dw = ww·log(gw/pw), dh likewise (centres
 * at x1 + 0.5·w). No clamp (that is decode's).
 */
export function boxEncode(reference: Tensor, proposals: Tensor, weights: BoxWeights): Tensor {
  const op = 'boxEncode';
  checkInputs(op, [reference, proposals]);
  const N = checkBoxes(op, reference, 'reference boxes');
  check(checkBoxes(op, proposals, 'proposals') === N, op, () => `reference ${fmtShape(reference.shape)} and proposals ${fmtShape(proposals.shape)} must have the same length`);
  const out = Tensor.empty([N, 4], 'f32', reference.device, op);
  if (N === 0) return out;
  const [wx, wy, ww, wh] = weights;
  if (reference.device === 'cpu') {
    const g = reference.cpu, pr = proposals.cpu, o = out.cpu;
    for (let i = 0; i < N; i++) {
      const pw = pr[i * 4 + 2] - pr[i * 4], ph = pr[i * 4 + 3] - pr[i * 4 + 1];
      const px = pr[i * 4] + 0.5 * pw, py = pr[i * 4 + 1] + 0.5 * ph;
      const gw = g[i * 4 + 2] - g[i * 4], gh = g[i * 4 + 3] - g[i * 4 + 1];
      const gx = g[i * 4] + 0.5 * gw, gy = g[i * 4 + 1] + 0.5 * gh;
      o.set([(wx * (gx - px)) / pw, (wy * (gy - py)) / ph, ww * Math.log(gw / pw), wh * Math.log(gh / ph)], i * 4);
    }
    return out;
  }
  const k = runtime().kernel('boxes.encode', linearKernel({ uniforms: { n: 'u32', w: 'vec4<f32>' }, read: { gt: 'vec4<f32>', prop: 'vec4<f32>' }, write: { d: 'vec4<f32>' }, wg: WG, bound: 'n' }, /* wgsl */ `
  let q = prop[i];
  let g = gt[i];
  let ps = q.zw - q.xy;
  let pc = q.xy + 0.5 * ps;
  let gs = g.zw - g.xy;
  let gc = g.xy + 0.5 * gs;
  d[i] = vec4<f32>(p.w.xy * (gc - pc) / ps, p.w.zw * log(gs / ps));`));
  runtime().dispatch(k, { gt: reference.binding(), prop: proposals.binding(), d: out.binding() }, { n: N, w: [wx, wy, ww, wh] }, grid1(Math.ceil(N / WG)));
  return out;
}

/** log(1000 / 16): torchvision's bbox_xform_clip. */
export const BBOX_XFORM_CLIP = Math.log(1000 / 16);

/**
 * torchvision's BoxCoder.decode_single: codes [N, 4·C] relative to boxes [N, 4] -> [N, 4·C]
 * (x1, y1, x2, y2 per class): centre = d·size/w + centre, size = exp(min(d/w, clip))·size, corners at
 * centre ± 0.5·size.
 */
export function boxDecode(codes: Tensor, boxes: Tensor, weights: BoxWeights, clip = BBOX_XFORM_CLIP): Tensor {
  const op = 'boxDecode';
  checkInputs(op, [codes, boxes]);
  const N = checkBoxes(op, boxes);
  check(codes.dtype === 'f32' && codes.rank === 2 && codes.shape[0] === N && codes.shape[1] % 4 === 0 && codes.shape[1] > 0, op,
    () => `codes must be f32 [${N}, 4·classes] for boxes ${fmtShape(boxes.shape)}, got ${codes.dtype} ${fmtShape(codes.shape)}`);
  const out = Tensor.empty(codes.shape, 'f32', codes.device, op);
  if (out.size === 0) return out;
  const per = codes.shape[1] / 4;
  const [wx, wy, ww, wh] = weights;
  if (codes.device === 'cpu') {
    const d = codes.cpu, b = boxes.cpu, o = out.cpu;
    for (let i = 0; i < N; i++) {
      const w = b[i * 4 + 2] - b[i * 4], h = b[i * 4 + 3] - b[i * 4 + 1];
      const cx = b[i * 4] + 0.5 * w, cy = b[i * 4 + 1] + 0.5 * h;
      for (let c = 0; c < per; c++) {
        const at = (i * per + c) * 4;
        const px = (d[at] / wx) * w + cx, py = (d[at + 1] / wy) * h + cy;
        const pw = Math.exp(Math.min(d[at + 2] / ww, clip)) * w, ph = Math.exp(Math.min(d[at + 3] / wh, clip)) * h;
        o.set([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], at);
      }
    }
    return out;
  }
  const k = runtime().kernel('boxes.decode', linearKernel({ uniforms: { n: 'u32', per: 'u32', clip: 'f32', w: 'vec4<f32>' }, read: { codes: 'vec4<f32>', boxes: 'vec4<f32>' }, write: { out: 'vec4<f32>' }, wg: WG, bound: 'n' }, /* wgsl */ `
  let b = boxes[i / p.per];
  let d = codes[i];
  let size = b.zw - b.xy;
  let ctr = b.xy + 0.5 * size;
  let pc = d.xy / p.w.xy * size + ctr;
  let ps = exp(min(d.zw / p.w.zw, vec2<f32>(p.clip))) * size;
  let half = 0.5 * ps;
  out[i] = vec4<f32>(pc - half, pc + half);`));
  runtime().dispatch(k, { codes: codes.binding(), boxes: boxes.binding(), out: out.binding() }, { n: N * per, per, clip, w: [wx, wy, ww, wh] }, grid1(Math.ceil((N * per) / WG)));
  return out;
}

// ---------------------------------------------------------------- clip, small boxes

/** torchvision.ops.clip_boxes_to_image: x into [0, width], y into [0, height]; boxes [..., 4]. */
export function clipBoxes(boxes: Tensor, size: readonly [number, number]): Tensor {
  const op = 'clipBoxes';
  checkInputs(op, [boxes]);
  check(boxes.dtype === 'f32' && boxes.rank >= 1 && boxes.shape[boxes.rank - 1] === 4, op, () => `boxes must be f32 [..., 4], got ${boxes.dtype} ${fmtShape(boxes.shape)}`);
  const [height, width] = size;
  check(Number.isFinite(height) && Number.isFinite(width), op, `size must be [height, width], got ${fmtShape(size)}`);
  const out = Tensor.empty(boxes.shape, 'f32', boxes.device, op);
  if (out.size === 0) return out;
  if (boxes.device === 'cpu') {
    const b = boxes.cpu, o = out.cpu;
    for (let i = 0; i < b.length; i++) o[i] = Math.min(Math.max(b[i], 0), i % 2 === 0 ? width : height);
    return out;
  }
  const n = out.size / 4;
  const k = runtime().kernel('boxes.clip', linearKernel({ uniforms: { n: 'u32', W: 'f32', H: 'f32' }, read: { b: 'vec4<f32>' }, write: { out: 'vec4<f32>' }, wg: WG, bound: 'n' }, /* wgsl */ `
  let hi = vec4<f32>(p.W, p.H, p.W, p.H);
  out[i] = min(max(b[i], vec4<f32>(0.0)), hi);`));
  runtime().dispatch(k, { b: boxes.binding(), out: out.binding() }, { n, W: width, H: height }, grid1(Math.ceil(n / WG)));
  return out;
}

/** An index list on the device: indices [cap] (i32, the first `count` valid, then −1) and count [1] (i32). */
export interface IndexList {
  indices: Tensor;
  count: Tensor;
}

/** keep = (x2 − x1 ≥ minSize) & (y2 − y1 ≥ minSize) as an i32 0/1 mask [N]. */
export function smallBoxMask(boxes: Tensor, minSize: number): Tensor {
  const op = 'removeSmallBoxes';
  checkInputs(op, [boxes]);
  const N = checkBoxes(op, boxes);
  const out = Tensor.empty([N], 'i32', boxes.device, op);
  if (N === 0) return out;
  if (boxes.device === 'cpu') {
    const b = boxes.cpu, o = out.cpu;
    for (let i = 0; i < N; i++) o[i] = Number(f(b[i * 4 + 2] - b[i * 4]) >= minSize && f(b[i * 4 + 3] - b[i * 4 + 1]) >= minSize);
    return out;
  }
  const k = runtime().kernel('boxes.small', linearKernel({ uniforms: { n: 'u32', min: 'f32' }, read: { b: 'vec4<f32>' }, write: { keep: 'i32' }, wg: WG, bound: 'n' }, /* wgsl */ `
  let s = b[i].zw - b[i].xy;
  keep[i] = select(0, 1, (s.x >= p.min) & (s.y >= p.min));`));
  runtime().dispatch(k, { b: boxes.binding(), keep: out.binding() }, { n: N, min: minSize }, grid1(Math.ceil(N / WG)));
  return out;
}

/** torchvision.ops.remove_small_boxes: the indices (ascending) of the boxes with both sides ≥ minSize. */
export function removeSmallBoxes(boxes: Tensor, minSize: number): IndexList {
  const mask = smallBoxMask(boxes, minSize);
  const list = compact(mask);
  mask.dispose();
  return list;
}

/**
 * Stream compaction: the positions i with mask[i] != 0, ascending, as an IndexList of capacity N.
 * On the GPU one workgroup scans the mask in chunks of 256 (a prefix sum in workgroup memory), so the
 * list and its count stay on the device.
 */
export function compact(mask: Tensor): IndexList {
  const op = 'compact';
  checkInputs(op, [mask]);
  check(mask.rank === 1 && mask.dtype !== 'f32', op, () => `mask must be an integer [N], got ${mask.dtype} ${fmtShape(mask.shape)}`);
  const N = mask.shape[0];
  const indices = Tensor.empty([N], 'i32', mask.device, op);
  const count = Tensor.empty([1], 'i32', mask.device, op);
  if (mask.device === 'cpu') {
    const m = mask.cpu, o = indices.cpu;
    o.fill(-1);
    let c = 0;
    for (let i = 0; i < N; i++) if (m[i] !== 0) o[c++] = i;
    count.cpu[0] = c;
    return { indices, count };
  }
  const k = runtime().kernel('boxes.compact', `${kernelHeader({
    uniforms: { n: 'u32' }, read: { mask: mask.dtype }, write: { indices: 'i32', count: 'i32' }, wg: WG,
    preamble: `var<workgroup> scan: array<u32, ${WG}>;\nvar<workgroup> total: u32;`,
  })}
  var base = 0u;
  for (var start = 0u; start < p.n; start += ${WG}u) {
    let i = start + li;
    let on = select(0u, 1u, i < p.n);
    let flag = select(0u, on, mask[min(i, p.n - 1u)] != 0);
    scan[li] = flag;
    workgroupBarrier();
    for (var off = 1u; off < ${WG}u; off <<= 1u) {
      let add = select(0u, scan[li - off], li >= off);
      workgroupBarrier();
      scan[li] += add;
      workgroupBarrier();
    }
    if (flag == 1u) { indices[base + scan[li] - 1u] = i32(i); }
    if (li == ${WG - 1}u) { total = scan[li]; }
    base += workgroupUniformLoad(&total);
  }
  for (var j = base + li; j < p.n; j += ${WG}u) { indices[j] = -1; }
  if (li == 0u) { count[0] = i32(base); }
}`);
  if (N === 0) runtime().clear(count.buffer, 4);
  else runtime().dispatch(k, { mask: mask.binding(), indices: indices.binding(), count: count.binding() }, { n: N }, [1]);
  return { indices, count };
}

// ---------------------------------------------------------------- the FPN level mapper

export interface LevelMapperOptions {
  kMin: number;
  kMax: number;
  canonicalScale?: number;
  canonicalLevel?: number;
  eps?: number;
}

/**
 * torchvision's LevelMapper: k = clamp(⌊k0 + log2(√area / s0) + eps⌋, kMin, kMax) − kMin as i32 [N]
 * (k0 = 4, s0 = 224, eps = 1e-6 by default), in float32 as torchvision computes it.
 */
export function fpnLevels(boxes: Tensor, opts: LevelMapperOptions): Tensor {
  const op = 'fpnLevels';
  checkInputs(op, [boxes]);
  const N = checkBoxes(op, boxes);
  const { kMin, kMax, canonicalScale = 224, canonicalLevel = 4, eps = 1e-6 } = opts;
  check(Number.isInteger(kMin) && Number.isInteger(kMax) && kMin <= kMax, op, `kMin ${kMin} and kMax ${kMax} must be integers with kMin <= kMax`);
  const out = Tensor.empty([N], 'i32', boxes.device, op);
  if (N === 0) return out;
  if (boxes.device === 'cpu') {
    const b = boxes.cpu, o = out.cpu;
    for (let i = 0; i < N; i++) {
      const s = f(Math.sqrt(f(f(b[i * 4 + 2] - b[i * 4]) * f(b[i * 4 + 3] - b[i * 4 + 1]))));
      const k = Math.floor(f(f(canonicalLevel + f(Math.log2(f(s / canonicalScale)))) + f(eps)));
      o[i] = Math.min(Math.max(k, kMin), kMax) - kMin;
    }
    return out;
  }
  const k = runtime().kernel('boxes.levels', linearKernel({ uniforms: { n: 'u32', kmin: 'f32', kmax: 'f32', k0: 'f32', s0: 'f32', eps: 'f32' }, read: { b: 'vec4<f32>' }, write: { lv: 'i32' }, wg: WG, bound: 'n' }, /* wgsl */ `
  let wh = b[i].zw - b[i].xy;
  let s = sqrt(wh.x * wh.y);
  let k = floor(p.k0 + log2(s / p.s0) + p.eps);
  lv[i] = i32(clamp(k, p.kmin, p.kmax) - p.kmin);`));
  runtime().dispatch(k, { b: boxes.binding(), lv: out.binding() }, { n: N, kmin: kMin, kmax: kMax, k0: canonicalLevel, s0: canonicalScale, eps }, grid1(Math.ceil(N / WG)));
  return out;
}
