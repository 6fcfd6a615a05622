// ROI align (He et al., Mask R-CNN, 2017) with exactly the semantics of torchvision.ops.roi_align
// (torchvision/csrc/ops/cpu/roi_align_kernel.cpp and roi_align_common.h):
//
//   roi (b, x1, y1, x2, y2) -> start = x1·scale − offset (offset 0.5 when aligned), size = end − start,
//   at least 1 when not aligned; bin = size / pooled; grid = samplingRatio > 0 ? samplingRatio
//   : ceil(size / pooled) per dimension; sample (iy, ix) of bin (ph, pw) at
//   y = start_h + ph·bin_h + (iy + 0.5)·bin_h / grid_h (x likewise); a sample with y < −1, y > H,
//   x < −1 or x > W contributes 0, otherwise it is clamped (v ≤ 0 → 0; low ≥ size − 1 → low = high =
//   size − 1) and interpolated bilinearly; out = Σ samples / max(grid_h·grid_w, 1).
//
// The bilinear weight of a sample is a product of a row weight and a column weight (the border rule
// too: a sample is dropped when its row or its column is out of range), which the backward uses.
//
// Backward (deterministic, no float atomics), two paths on the GPU:
//  - a fixed sampling ratio (Mask R-CNN's 2): each (ROI, bin, sample, corner) is an entry with its
//    input pixel and weight; buildCSR (kernels/segment.ts) groups the entries by pixel with a stable
//    counting sort and one invocation per input element sums its pixel's entries in entry order;
//  - the adaptive grid, whose sample count depends on the ROIs (which stay on the GPU): one
//    invocation per input element (b, c, y, x) gathers from every ROI of image b the samples whose
//    row stencil touches y and whose column stencil touches x. The samples of one dimension lie on
//    a uniform lattice start + (j + 0.5)·bin/grid, j < pooled·grid, so the candidates are found by
//    inverting it (widened by one step on each side), and each candidate's weight is recomputed
//    with the forward's own arithmetic. One range test per (input element, ROI).
// The CPU reference scatters as torchvision does.
//
// MultiScaleRoIAlign: roiAlignLevels pools every ROI from the feature map of its level in one pass
// (the maps bound side by side, one pooling function per level); the backward takes a level
// selection (levels[k] == level) and runs once per level.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { kernelHeader, linearKernel } from './wgsl.js';
import { Tensor, type Shape } from './tensor.js';
import { buildCSR } from './segment.js';

const WG = 256;

export interface RoiAlignOptions {
  /** pooled [height, width] (a number for a square) */
  outputSize: number | readonly [number, number];
  /** feature-map pixels per input-image pixel (1/stride); default 1 */
  spatialScale?: number;
  /** samples per bin and dimension; ≤ 0 (default −1): adaptive ceil(roi size / pooled size) */
  samplingRatio?: number;
  /** true: shift the box by −0.5 pixel (pixel centres at +0.5), no minimum size; default false */
  aligned?: boolean;
}

/** Restricts the op to the ROIs whose level is `level` (levels: i32 [K]). */
export interface RoiLevelSelection {
  levels: Tensor;
  level: number;
}

interface Resolved {
  PH: number;
  PW: number;
  scale: number;
  sr: number;
  aligned: boolean;
}

function resolve(op: string, opts: RoiAlignOptions): Resolved {
  const [PH, PW] = typeof opts.outputSize === 'number' ? [opts.outputSize, opts.outputSize] : opts.outputSize;
  check(Number.isInteger(PH) && Number.isInteger(PW) && PH > 0 && PW > 0, op, `outputSize must be positive integers, got ${fmtShape([PH, PW])}`);
  const scale = opts.spatialScale ?? 1;
  check(Number.isFinite(scale) && scale > 0, op, `spatialScale must be a positive number, got ${scale}`);
  const sr = opts.samplingRatio ?? -1;
  check(Number.isInteger(sr), op, `samplingRatio must be an integer, got ${sr}`);
  return { PH, PW, scale, sr, aligned: Boolean(opts.aligned) };
}

function checkRois(op: string, rois: Tensor): number {
  check(rois.dtype === 'f32' && rois.rank === 2 && rois.shape[1] === 5, op, () => `rois must be f32 [K, 5] (batch index, x1, y1, x2, y2), got ${rois.dtype} ${fmtShape(rois.shape)}`);
  return rois.shape[0];
}

function checkSelection(op: string, sel: RoiLevelSelection | undefined, K: number): void {
  if (!sel) return;
  check(sel.levels.dtype === 'i32' && sel.levels.rank === 1 && sel.levels.shape[0] === K, op, () => `levels must be i32 [${K}], got ${sel.levels.dtype} ${fmtShape(sel.levels.shape)}`);
  check(Number.isInteger(sel.level) && sel.level >= 0, op, `level must be a non-negative integer, got ${sel.level}`);
}

// ---------------------------------------------------------------- geometry shared by the CPU paths

interface RoiGeom {
  b: number;
  sh: number;
  sw: number;
  bh: number;
  bw: number;
  gh: number;
  gw: number;
  count: number;
}

/** torchvision's per-ROI arithmetic (here in float64, as torchvision's double kernel). */
function roiGeom(r: ArrayLike<number>, k: number, g: Resolved): RoiGeom {
  const off = g.aligned ? 0.5 : 0;
  const sw = r[k * 5 + 1] * g.scale - off, sh = r[k * 5 + 2] * g.scale - off;
  const ew = r[k * 5 + 3] * g.scale - off, eh = r[k * 5 + 4] * g.scale - off;
  let rw = ew - sw, rh = eh - sh;
  if (!g.aligned) {
    rw = Math.max(rw, 1);
    rh = Math.max(rh, 1);
  }
  const bh = rh / g.PH, bw = rw / g.PW;
  // C++ `int grid = ceil(...)`: truncation of an integral double
  const gh = g.sr > 0 ? g.sr : Math.trunc(Math.ceil(rh / g.PH));
  const gw = g.sr > 0 ? g.sr : Math.trunc(Math.ceil(rw / g.PW));
  return { b: Math.trunc(r[k * 5]), sh, sw, bh, bw, gh, gw, count: Math.max(gh * gw, 1) };
}

interface Lin {
  lo: number;
  hi: number;
  wl: number;
  wh: number;
}

/** One dimension of bilinear_interpolate: null when the sample is out of [−1, size]. */
function lin(v: number, size: number): Lin | null {
  if (v < -1 || v > size) return null;
  if (v <= 0) v = 0;
  let lo = Math.trunc(v), hi: number;
  if (lo >= size - 1) {
    hi = lo = size - 1;
    v = lo;
  } else hi = lo + 1;
  const l = v - lo;
  return { lo, hi, wl: 1 - l, wh: l };
}

const sampleAt = (start: number, bin: number, grid: number, p: number, i: number): number => start + p * bin + ((i + 0.5) * bin) / grid;

// ---------------------------------------------------------------- WGSL shared by both passes

const STRUCT = { n: 'u32', N: 'u32', C: 'u32', H: 'u32', W: 'u32', K: 'u32', PH: 'u32', PW: 'u32', scale: 'f32', sr: 'i32', aligned: 'u32', level: 'i32', fill: 'f32' };

/** The WGSL twin of roiGeom and lin (float32, the order of operations of the C++ kernel). */
const GEOM_WGSL = /* wgsl */ `
struct Geom { b: i32, sh: f32, sw: f32, bh: f32, bw: f32, gh: i32, gw: i32, count: f32 }
fn roi_geom(k: u32, scale: f32) -> Geom {
  let off = select(0.0, 0.5, p.aligned != 0u);
  let sw = rois[k * 5u + 1u] * scale - off;
  let sh = rois[k * 5u + 2u] * scale - off;
  let ew = rois[k * 5u + 3u] * scale - off;
  let eh = rois[k * 5u + 4u] * scale - off;
  var rw = ew - sw;
  var rh = eh - sh;
  if (p.aligned == 0u) { rw = max(rw, 1.0); rh = max(rh, 1.0); }
  let bh = rh / f32(p.PH);
  let bw = rw / f32(p.PW);
  let gh = select(i32(ceil(clamp(rh / f32(p.PH), -1.0, 65536.0))), p.sr, p.sr > 0);
  let gw = select(i32(ceil(clamp(rw / f32(p.PW), -1.0, 65536.0))), p.sr, p.sr > 0);
  return Geom(i32(rois[k * 5u]), sh, sw, bh, bw, gh, gw, f32(max(gh * gw, 1)));
}
struct Lin { lo: u32, hi: u32, wl: f32, wh: f32, ok: bool }
fn lin(v0: f32, size: u32) -> Lin {
  if ((v0 < -1.0) | (v0 > f32(size))) { return Lin(0u, 0u, 0.0, 0.0, false); }
  var v = max(v0, 0.0);
  var lo = u32(v);
  var hi = lo + 1u;
  if (lo >= size - 1u) { lo = size - 1u; hi = lo; v = f32(lo); }
  let l = v - f32(lo);
  return Lin(lo, hi, 1.0 - l, l, true);
}
fn sample_at(start: f32, bin: f32, grid: i32, pi: u32, i: i32) -> f32 {
  return start + f32(pi) * bin + (f32(i) + 0.5) * bin / f32(grid);
}`;

function uniformsOf(g: Resolved, n: number, shape: Shape, K: number, level: number) {
  const [N, C, H, W] = shape;
  return { n, N, C, H, W, K, PH: g.PH, PW: g.PW, scale: g.scale, sr: g.sr, aligned: Number(g.aligned), level, fill: NaN };
}

// ---------------------------------------------------------------- forward

/** The most feature maps one multi-level forward binds (SwiftShader allows 10 storage buffers). */
export const ROI_ALIGN_MAX_LEVELS = 7;
/** Channels one forward invocation pools: the ROI geometry and the bilinear taps are shared by them. */
const CPI = 4;

/**
 * torchvision.ops.roi_align: x [N, C, H, W], rois [K, 5] (batch index, x1, y1, x2, y2 in image
 * coordinates) -> [K, C, PH, PW].
 */
export function roiAlign(x: Tensor, rois: Tensor, opts: RoiAlignOptions): Tensor {
  const op = 'roiAlign';
  const g = resolve(op, opts);
  checkInputs(op, [x, rois]);
  check(x.dtype === 'f32' && x.rank === 4, op, () => `expects an f32 input [N, C, H, W], got ${x.dtype} ${fmtShape(x.shape)}`);
  const K = checkRois(op, rois);
  const out = Tensor.empty([K, x.shape[1], g.PH, g.PW], 'f32', x.device, op);
  forward(op, [x], [g.scale], rois, g, out);
  return out;
}

export interface RoiAlignLevelsOptions {
  outputSize: number | readonly [number, number];
  /** spatial scale of each feature map */
  scales: readonly number[];
  samplingRatio?: number;
  aligned?: boolean;
}

/**
 * MultiScaleRoIAlign's pooling: ROI k is pooled from features[levels[k]] at scales[levels[k]]
 * (levels i32 [K]), output [K, C, PH, PW] in ROI order, in one pass over all ROIs. A level outside
 * [0, L) gives NaN rows on the GPU (the CPU reference throws).
 */
export function roiAlignLevels(features: readonly Tensor[], rois: Tensor, levels: Tensor, opts: RoiAlignLevelsOptions): Tensor {
  const op = 'roiAlignLevels';
  const L = features.length;
  check(L > 0 && L <= ROI_ALIGN_MAX_LEVELS && opts.scales.length === L, op, `needs 1..${ROI_ALIGN_MAX_LEVELS} feature maps and one scale each, got ${L} maps and ${opts.scales.length} scales`);
  const g = resolve(op, { ...opts, spatialScale: opts.scales[0] });
  for (const sc of opts.scales) check(Number.isFinite(sc) && sc > 0, op, `scales must be positive numbers, got [${opts.scales.join(', ')}]`);
  checkInputs(op, [...features, rois, levels]);
  const C = features[0].shape[1], N = features[0].shape[0];
  for (const f of features) check(f.dtype === 'f32' && f.rank === 4 && f.shape[0] === N && f.shape[1] === C, op, () => `feature maps must be f32 [${N}, ${C}, H, W], got ${features.map((t) => `${t.dtype} ${fmtShape(t.shape)}`).join(', ')}`);
  const K = checkRois(op, rois);
  checkSelection(op, { levels, level: 0 }, K);
  const out = Tensor.empty([K, C, g.PH, g.PW], 'f32', rois.device, op);
  forward(op, features, opts.scales, rois, g, out, levels);
  return out;
}

function forward(op: string, xs: readonly Tensor[], scales: readonly number[], rois: Tensor, g: Resolved, out: Tensor, levels?: Tensor): void {
  const [N, C] = xs[0].shape;
  const K = rois.shape[0];
  for (const x of xs) check(x.shape[2] > 0 && x.shape[3] > 0 || K === 0, op, () => `input ${fmtShape(x.shape)} has an empty plane`);
  if (out.size === 0) return;
  if (rois.device === 'cpu') {
    const r = rois.cpu, o = out.cpu, lv = levels?.cpu;
    const plane = g.PH * g.PW;
    for (let k = 0; k < K; k++) {
      const l = lv ? lv[k] : 0;
      check(l >= 0 && l < xs.length, op, () => `roi ${k} has level ${l}, outside [0, ${xs.length})`);
      const xsl = xs[l].cpu, [, , H, W] = xs[l].shape;
      const q = roiGeom(r, k, { ...g, scale: scales[l] });
      check(q.b >= 0 && q.b < N, op, () => `roi ${k} has batch index ${r[k * 5]}, outside [0, ${N}) for input ${fmtShape(xs[l].shape)}`);
      for (let ph = 0; ph < g.PH; ph++) {
        for (let pw = 0; pw < g.PW; pw++) {
          // the sample lattice of this bin, shared by all channels (torchvision's pre_calc)
          const taps: number[] = [];
          for (let iy = 0; iy < q.gh; iy++) {
            const ly = lin(sampleAt(q.sh, q.bh, q.gh, ph, iy), H);
            for (let ix = 0; ix < q.gw; ix++) {
              const lx = lin(sampleAt(q.sw, q.bw, q.gw, pw, ix), W);
              if (!ly || !lx) continue;
              taps.push(ly.lo * W + lx.lo, ly.wl * lx.wl, ly.lo * W + lx.hi, ly.wl * lx.wh, ly.hi * W + lx.lo, ly.wh * lx.wl, ly.hi * W + lx.hi, ly.wh * lx.wh);
            }
          }
          for (let c = 0; c < C; c++) {
            const base = (q.b * C + c) * H * W;
            let acc = 0;
            for (let t = 0; t < taps.length; t += 8) {
              acc += taps[t + 1] * xsl[base + taps[t]] + taps[t + 3] * xsl[base + taps[t + 2]] + taps[t + 5] * xsl[base + taps[t + 4]] + taps[t + 7] * xsl[base + taps[t + 6]];
            }
            o[(k * C + c) * plane + ph * g.PW + pw] = acc / q.count;
          }
        }
      }
    }
    return;
  }
  const L = xs.length;
  const read: Record<string, string> = { rois: 'f32', ...(levels ? { levels: 'i32' } : {}) };
  xs.forEach((_, l) => (read[`x${l}`] = 'f32'));
  // one pooling function per level (a storage buffer cannot be passed to a function): CPI channels
  // c0.. of bin (ph, pw) of ROI k, the bilinear taps computed once for them
  const pools = xs.map((_, l) => /* wgsl */ `
fn pool${l}(q: Geom, c0: u32, ph: u32, pw: u32, H: u32, W: u32) -> vec4<f32> {
  var acc = vec4<f32>(0.0);
  let plane = H * W;
  let base = (u32(q.b) * p.C + c0) * plane;
  let nc = min(${CPI}u, p.C - c0);
  for (var iy = 0; iy < q.gh; iy++) {
    let ly = lin(sample_at(q.sh, q.bh, q.gh, ph, iy), H);
    if (!ly.ok) { continue; }
    let r0 = base + ly.lo * W;
    let r1 = base + ly.hi * W;
    for (var ix = 0; ix < q.gw; ix++) {
      let lx = lin(sample_at(q.sw, q.bw, q.gw, pw, ix), W);
      if (!lx.ok) { continue; }
      let w1 = ly.wl * lx.wl;
      let w2 = ly.wl * lx.wh;
      let w3 = ly.wh * lx.wl;
      let w4 = ly.wh * lx.wh;
      for (var j = 0u; j < nc; j++) {
        let o = j * plane;
        acc[j] += w1 * x${l}[r0 + lx.lo + o] + w2 * x${l}[r0 + lx.hi + o] + w3 * x${l}[r1 + lx.lo + o] + w4 * x${l}[r1 + lx.hi + o];
      }
    }
  }
  return acc;
}`).join('\n');
  const cases = xs.map((_, l) => `    case ${l}u: { acc = pool${l}(q, c0, ph, pw, dims.x, dims.y); }`).join('\n');
  const code = `${kernelHeader({
    uniforms: { n: 'u32', N: 'u32', C: 'u32', CG: 'u32', K: 'u32', PH: 'u32', PW: 'u32', sr: 'i32', aligned: 'u32', fill: 'f32', hw: 'array<vec4<u32>, 4>', scales: 'array<vec4<f32>, 2>' },
    read, write: { y: 'f32' }, wg: WG,
  })}
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let pw = i % p.PW;
  let ph = (i / p.PW) % p.PH;
  let c0 = ((i / (p.PW * p.PH)) % p.CG) * ${CPI}u;
  let k = i / (p.PW * p.PH * p.CG);
  let lv = ${levels ? 'u32(levels[k])' : '0u'};
  let nc = min(${CPI}u, p.C - c0);
  let at = ((k * p.C + c0) * p.PH + ph) * p.PW + pw;
  let step = p.PH * p.PW;
  if (lv >= ${L}u) {
    for (var j = 0u; j < nc; j++) { y[at + j * step] = p.fill; }
    return;
  }
  let q = roi_geom(k, p.scales[lv / 4u][lv % 4u]);
  let hw = p.hw[lv / 2u];
  let dims = select(hw.zw, hw.xy, lv % 2u == 0u);
  if ((q.b < 0) | (q.b >= i32(p.N))) {
    for (var j = 0u; j < nc; j++) { y[at + j * step] = p.fill; }
    return;
  }
  var acc = vec4<f32>(0.0);
  switch lv {
${cases}
    default: { }
  }
  for (var j = 0u; j < nc; j++) { y[at + j * step] = acc[j] / q.count; }
}`;
  const kern = runtime().kernel('roi-align.forward', injectAfterBindings(code, `${GEOM_WGSL}\n${pools}`));
  const bufs: Record<string, ReturnType<Tensor['binding']>> = { rois: rois.binding(), y: out.binding() };
  if (levels) bufs.levels = levels.binding();
  xs.forEach((x, l) => (bufs[`x${l}`] = x.binding()));
  const CG = Math.ceil(C / CPI);
  const n = K * CG * g.PH * g.PW;
  const hw = new Array<number>(16).fill(0), sc = new Array<number>(8).fill(1);
  xs.forEach((x, l) => {
    hw[2 * l] = x.shape[2];
    hw[2 * l + 1] = x.shape[3];
    sc[l] = scales[l];
  });
  runtime().dispatch(kern, bufs, { n, N, C, CG, K, PH: g.PH, PW: g.PW, sr: g.sr, aligned: Number(g.aligned), fill: NaN, hw, scales: sc }, grid1(Math.ceil(n / WG)));
}

/**
 * The backward for a fixed sampling ratio: every (ROI, bin, sample, corner) is one entry with its
 * input pixel (b, y, x) and weight w_y·w_x / count (pixel −1 for a dropped sample or another
 * level's ROI); buildCSR groups the entries by pixel with a stable counting sort, and one invocation
 * per input element (b, c, y, x) sums w · dy[k, c, ph, pw] over its pixel's entries, in entry order.
 * (K·PH·PW·sr²·4 entries, known without reading anything back; the adaptive grid's count depends on
 * the ROIs, which stay on the GPU, so it takes the gather path.)
 */
function backwardCSR(grad: Tensor, rois: Tensor, inputShape: Shape, g: Resolved, dx: Tensor, sel?: RoiLevelSelection): void {
  const [, , H, W] = inputShape;
  const K = rois.shape[0];
  const per = 4 * g.sr * g.sr; // entries per bin
  const nnz = K * g.PH * g.PW * per;
  const op = 'roiAlignBackward';
  const pix = Tensor.empty([nnz], 'i32', 'webgpu', op);
  const wts = Tensor.empty([nnz], 'f32', 'webgpu', op);
  const levels: Record<string, string> = sel ? { levels: 'i32' } : {};
  const entries = `${kernelHeader({ uniforms: STRUCT, read: { rois: 'f32', ...levels }, write: { pix: 'i32', wts: 'f32' }, wg: WG })}
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let sr = u32(p.sr);
  let corner = i % 4u;
  let s = i / 4u;
  let ix = i32(s % sr);
  let iy = i32((s / sr) % sr);
  let bin = s / (sr * sr);
  let pw = bin % p.PW;
  let ph = (bin / p.PW) % p.PH;
  let k = bin / (p.PW * p.PH);
  pix[i] = -1;
  wts[i] = 0.0;
  ${sel ? 'if (levels[k] != p.level) { return; }' : ''}
  let q = roi_geom(k, p.scale);
  if ((q.b < 0) | (q.b >= i32(p.N))) { return; }
  let ly = lin(sample_at(q.sh, q.bh, q.gh, ph, iy), p.H);
  let lx = lin(sample_at(q.sw, q.bw, q.gw, pw, ix), p.W);
  if (!(ly.ok & lx.ok)) { return; }
  let hy = (corner & 2u) != 0u;
  let hx = (corner & 1u) != 0u;
  let y = select(ly.lo, ly.hi, hy);
  let x = select(lx.lo, lx.hi, hx);
  pix[i] = i32((u32(q.b) * p.H + y) * p.W + x);
  wts[i] = select(ly.wl, ly.wh, hy) * select(lx.wl, lx.wh, hx) / q.count;
}`;
  const ek = runtime().kernel('roi-align.entries', injectAfterBindings(entries, GEOM_WGSL));
  const eb: Record<string, ReturnType<Tensor['binding']>> = { rois: rois.binding(), pix: pix.binding(), wts: wts.binding() };
  if (sel) eb.levels = sel.levels.binding();
  runtime().dispatch(ek, eb, uniformsOf(g, nnz, inputShape, K, sel?.level ?? -1), grid1(Math.ceil(nnz / WG)));
  const { offsets, perm } = buildCSR(pix, inputShape[0] * H * W);
  pix.dispose();
  // one invocation per (image, group of CPI channels, pixel): the segment is walked once for them
  const C = inputShape[1], CG = Math.ceil(C / CPI);
  const sum = runtime().kernel('roi-align.csrSum', linearKernel({
    uniforms: { n: 'u32', C: 'u32', CG: 'u32', HW: 'u32', bins: 'u32', per: 'u32' }, read: { offsets: 'i32', perm: 'i32', wts: 'f32', dy: 'f32' }, write: { dx: 'f32' }, wg: WG, bound: 'n',
  }, /* wgsl */ `
  let px = i % p.HW;
  let c0 = ((i / p.HW) % p.CG) * ${CPI}u;
  let b = i / (p.HW * p.CG);
  let s = b * p.HW + px;
  let nc = min(${CPI}u, p.C - c0);
  var acc = vec4<f32>(0.0);
  for (var t = offsets[s]; t < offsets[s + 1u]; t++) {
    let e = u32(perm[t]);
    let bin = e / p.per;
    let w = wts[e];
    let at = ((bin / p.bins) * p.C + c0) * p.bins + bin % p.bins;
    for (var j = 0u; j < nc; j++) { acc[j] += w * dy[at + j * p.bins]; }
  }
  for (var j = 0u; j < nc; j++) { dx[((b * p.C + c0 + j) * p.HW) + px] = acc[j]; }`));
  const n = inputShape[0] * CG * H * W;
  runtime().dispatch(sum, { offsets: offsets.binding(), perm: perm.binding(), wts: wts.binding(), dy: grad.binding(), dx: dx.binding() },
    { n, C, CG, HW: H * W, bins: g.PH * g.PW, per }, grid1(Math.ceil(n / WG)));
  offsets.dispose();
  perm.dispose();
  wts.dispose();
}

/** Places helper functions between the bindings and the entry point. */
function injectAfterBindings(code: string, helpers: string): string {
  const at = code.indexOf('@compute');
  return `${code.slice(0, at)}${helpers}\n${code.slice(at)}`;
}

// ---------------------------------------------------------------- backward

/**
 * The gradient of roi_align with respect to its input: grad [K, C, PH, PW] -> [N, C, H, W]
 * (`inputShape`). With a level selection, only the ROIs of that level contribute.
 */
export function roiAlignBackward(grad: Tensor, rois: Tensor, inputShape: Shape, opts: RoiAlignOptions, sel?: RoiLevelSelection): Tensor {
  const op = 'roiAlignBackward';
  const g = resolve(op, opts);
  checkInputs(op, sel ? [grad, rois, sel.levels] : [grad, rois]);
  const K = checkRois(op, rois);
  checkSelection(op, sel, K);
  check(inputShape.length === 4, op, () => `inputShape must be [N, C, H, W], got ${fmtShape(inputShape)}`);
  const [N, C, H, W] = inputShape;
  const want = [K, C, g.PH, g.PW];
  check(grad.dtype === 'f32' && grad.shape.join() === want.join(), op, () => `gradient ${grad.dtype} ${fmtShape(grad.shape)} does not have the output shape ${fmtShape(want)}`);
  const dx = Tensor.empty(inputShape, 'f32', grad.device, op);
  if (dx.size === 0) return dx;
  if (grad.device === 'cpu') {
    const gs = grad.cpu, r = rois.cpu, o = dx.cpu, lv = sel?.levels.cpu;
    o.fill(0);
    for (let k = 0; k < K; k++) {
      if (lv && lv[k] !== sel!.level) continue;
      const q = roiGeom(r, k, g);
      check(q.b >= 0 && q.b < N, op, () => `roi ${k} has batch index ${r[k * 5]}, outside [0, ${N})`);
      // torchvision's backward divides by grid_h·grid_w without the max(·, 1): the same whenever a sample exists
      const count = q.gh * q.gw;
      for (let c = 0; c < C; c++) {
        const base = (q.b * C + c) * H * W;
        for (let ph = 0; ph < g.PH; ph++) {
          for (let pw = 0; pw < g.PW; pw++) {
            const v = gs[((k * C + c) * g.PH + ph) * g.PW + pw];
            for (let iy = 0; iy < q.gh; iy++) {
              const ly = lin(sampleAt(q.sh, q.bh, q.gh, ph, iy), H);
              for (let ix = 0; ix < q.gw; ix++) {
                const lx = lin(sampleAt(q.sw, q.bw, q.gw, pw, ix), W);
                if (!ly || !lx) continue;
                o[base + ly.lo * W + lx.lo] += (v * ly.wl * lx.wl) / count;
                o[base + ly.lo * W + lx.hi] += (v * ly.wl * lx.wh) / count;
                o[base + ly.hi * W + lx.lo] += (v * ly.wh * lx.wl) / count;
                o[base + ly.hi * W + lx.hi] += (v * ly.wh * lx.wh) / count;
              }
            }
          }
        }
      }
    }
    return dx;
  }
  if (K === 0) {
    runtime().clear(dx.buffer, dx.size * 4);
    return dx;
  }
  if (g.sr > 0) {
    backwardCSR(grad, rois, inputShape, g, dx, sel);
    return dx;
  }
  const levels: Record<string, string> = sel ? { levels: 'i32' } : {};
  // per ROI, once: its image (−1 when it takes no part) and a conservative box of the input rows
  // and columns its samples touch, so that the per-element loop rejects most ROIs with one test
  const extent = `${kernelHeader({ uniforms: STRUCT, read: { rois: 'f32', ...levels }, write: { owner: 'i32', ext: 'vec4<i32>' }, wg: WG })}
  let k = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (k >= p.K) { return; }
  owner[k] = -1;
  ${sel ? 'if (levels[k] != p.level) { return; }' : ''}
  let q = roi_geom(k, p.scale);
  if ((q.b < 0) | (q.b >= i32(p.N)) | (q.gh <= 0) | (q.gw <= 0)) { return; }
  let y = span(sample_at(q.sh, q.bh, q.gh, 0u, 0), sample_at(q.sh, q.bh, q.gh, p.PH - 1u, q.gh - 1), p.H);
  let x = span(sample_at(q.sw, q.bw, q.gw, 0u, 0), sample_at(q.sw, q.bw, q.gw, p.PW - 1u, q.gw - 1), p.W);
  if ((y.x > y.y) | (x.x > x.y)) { return; }
  owner[k] = q.b;
  ext[k] = vec4<i32>(y, x);
}`;
  const spanFn = `
// Rows [lo, hi] a lattice from v0 to v1 can touch (widened by one on each side), empty when it lies beyond [−1, size].
fn span(v0: f32, v1: f32, size: u32) -> vec2<i32> {
  let a = clamp(min(v0, v1), -4.0, f32(size) + 4.0);
  let z = clamp(max(v0, v1), -4.0, f32(size) + 4.0);
  if ((z < -1.0) | (a > f32(size))) { return vec2<i32>(1, 0); }
  return vec2<i32>(max(i32(floor(max(a, 0.0))) - 1, 0), min(i32(floor(z)) + 2, i32(size) - 1));
}`;
  const owner = Tensor.empty([K], 'i32', 'webgpu', op);
  const ext = Tensor.empty([K * 4], 'i32', 'webgpu', op);
  const ek = runtime().kernel('roi-align.extent', injectAfterBindings(extent, GEOM_WGSL + spanFn));
  const eb: Record<string, ReturnType<Tensor['binding']>> = { rois: rois.binding(), owner: owner.binding(), ext: ext.binding() };
  if (sel) eb.levels = sel.levels.binding();
  runtime().dispatch(ek, eb, uniformsOf(g, K, inputShape, K, sel?.level ?? -1), grid1(Math.ceil(K / WG)));
  const code = `${kernelHeader({ uniforms: STRUCT, read: { dy: 'f32', rois: 'f32', owner: 'i32', ext: 'vec4<i32>' }, write: { dx: 'f32' }, wg: WG })}
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  // one invocation per (image, group of ${CPI} channels, pixel): the ROI tests are shared by the channels
  let xw = i % p.W;
  let yh = (i / p.W) % p.H;
  let cgs = (p.C + ${CPI - 1}u) / ${CPI}u;
  let c0 = ((i / (p.W * p.H)) % cgs) * ${CPI}u;
  let b = i32(i / (p.W * p.H * cgs));
  let nc = min(${CPI}u, p.C - c0);
  let cstep = p.PH * p.PW;
  var acc = vec4<f32>(0.0);
  for (var k = 0u; k < p.K; k++) {
    if (owner[k] != b) { continue; }
    let e = ext[k];
    if ((i32(yh) < e.x) | (i32(yh) > e.y) | (i32(xw) < e.z) | (i32(xw) > e.w)) { continue; }
    let q = roi_geom(k, p.scale);
    let ry = candidates(yh, q.sh, q.bh, q.gh, p.PH);
    if (ry.x > ry.y) { continue; }
    let rx = candidates(xw, q.sw, q.bw, q.gw, p.PW);
    if (rx.x > rx.y) { continue; }
    let gbase = (k * p.C + c0) * cstep;
    var roi_acc = vec4<f32>(0.0);
    for (var jy = ry.x; jy <= ry.y; jy++) {
      let ph = u32(jy / q.gh);
      let wy = weight_of(yh, sample_at(q.sh, q.bh, q.gh, ph, jy % q.gh), p.H);
      if (wy == 0.0) { continue; }
      var row = vec4<f32>(0.0);
      for (var jx = rx.x; jx <= rx.y; jx++) {
        let pw = u32(jx / q.gw);
        let wx = weight_of(xw, sample_at(q.sw, q.bw, q.gw, pw, jx % q.gw), p.W);
        let at = gbase + ph * p.PW + pw;
        for (var j = 0u; j < nc; j++) { row[j] += wx * dy[at + j * cstep]; }
      }
      roi_acc += wy * row;
    }
    acc += roi_acc / f32(q.gh * q.gw);
  }
  for (var j = 0u; j < nc; j++) { dx[((u32(b) * p.C + c0 + j) * p.H + yh) * p.W + xw] = acc[j]; }
}`;
  const helpers = `${GEOM_WGSL}
// The weight the sample at v gives to position at along one dimension (0 when out of range).
fn weight_of(at: u32, v: f32, size: u32) -> f32 {
  let l = lin(v, size);
  if (!l.ok) { return 0.0; }
  return select(0.0, l.wl, l.lo == at) + select(0.0, l.wh, l.hi == at);
}
// Lattice indices j < pooled·grid whose sample start + (j + 0.5)·bin/grid may lie in [at − 1, at + 1],
// widened by one step on each side against rounding; the whole lattice when the step is ~0.
fn candidates(at: u32, start: f32, bin: f32, grid: i32, pooled: u32) -> vec2<i32> {
  let n = i32(pooled) * grid;
  let step = bin / f32(grid);
  if (abs(step) < 1e-30) { return vec2<i32>(0, n - 1); }
  let a = (f32(at) - 1.0 - start) / step - 0.5;
  let z = (f32(at) + 1.0 - start) / step - 0.5;
  let lo = clamp(floor(min(a, z)) - 1.0, -1.0, f32(n));
  let hi = clamp(ceil(max(a, z)) + 1.0, -1.0, f32(n));
  return vec2<i32>(max(i32(lo), 0), min(i32(hi), n - 1));
}`;
  const nGather = inputShape[0] * Math.ceil(inputShape[1] / CPI) * inputShape[2] * inputShape[3];
  const kern = runtime().kernel('roi-align.backward', injectAfterBindings(code, helpers));
  runtime().dispatch(kern, { dy: grad.binding(), rois: rois.binding(), owner: owner.binding(), ext: ext.binding(), dx: dx.binding() },
    uniformsOf(g, nGather, inputShape, K, sel?.level ?? -1), grid1(Math.ceil(nGather / WG)));
  owner.dispose();
  ext.dispose();
  return dx;
}
