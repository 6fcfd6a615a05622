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
// Backward (deterministic, no float atomics): one invocation per input element (b, c, y, x) gathers
// from every ROI of image b the samples whose row stencil touches y and whose column stencil
// touches x. The samples of one dimension lie on a uniform lattice start + (j + 0.5)·bin/grid,
// j < pooled·grid, so the candidates are found by inverting it (widened by one step on each side),
// and each candidate's weight is recomputed with the forward's own arithmetic. The cost is one
// cheap range test per (input element, ROI) plus the touching samples; the CPU reference scatters
// as torchvision does.
//
// A levels selection (for MultiScaleRoIAlign) restricts an op to the ROIs with levels[k] == level:
// the forward writes only those rows of `out`, the backward gathers only from them.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { kernelHeader } from './wgsl.js';
import { Tensor, type Shape } from './tensor.js';

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
fn roi_geom(k: u32) -> Geom {
  let off = select(0.0, 0.5, p.aligned != 0u);
  let sw = rois[k * 5u + 1u] * p.scale - off;
  let sh = rois[k * 5u + 2u] * p.scale - off;
  let ew = rois[k * 5u + 3u] * p.scale - off;
  let eh = rois[k * 5u + 4u] * p.scale - off;
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
  roiAlignInto(op, x, rois, g, out);
  return out;
}

/**
 * Writes roi_align of the ROIs with levels[k] == level into their rows of `out` [K, C, PH, PW]
 * (the other rows are left as they are): one level of MultiScaleRoIAlign, in ROI order.
 */
export function roiAlignLevel(x: Tensor, rois: Tensor, opts: RoiAlignOptions, sel: RoiLevelSelection, out: Tensor): void {
  const op = 'roiAlignLevel';
  const g = resolve(op, opts);
  checkInputs(op, [x, rois, sel.levels, out]);
  check(x.dtype === 'f32' && x.rank === 4, op, () => `expects an f32 input [N, C, H, W], got ${x.dtype} ${fmtShape(x.shape)}`);
  const K = checkRois(op, rois);
  checkSelection(op, sel, K);
  const want = [K, x.shape[1], g.PH, g.PW];
  check(out.shape.join() === want.join(), op, () => `out must have shape ${fmtShape(want)}, got ${fmtShape(out.shape)}`);
  roiAlignInto(op, x, rois, g, out, sel);
}

function roiAlignInto(op: string, x: Tensor, rois: Tensor, g: Resolved, out: Tensor, sel?: RoiLevelSelection): void {
  const [N, C, H, W] = x.shape;
  const K = rois.shape[0];
  check(H > 0 && W > 0 || K === 0, op, () => `input ${fmtShape(x.shape)} has an empty plane`);
  if (out.size === 0) return;
  if (x.device === 'cpu') {
    const xs = x.cpu, r = rois.cpu, o = out.cpu, lv = sel?.levels.cpu;
    const plane = g.PH * g.PW;
    for (let k = 0; k < K; k++) {
      if (lv && lv[k] !== sel!.level) continue;
      const q = roiGeom(r, k, g);
      check(q.b >= 0 && q.b < N, op, () => `roi ${k} has batch index ${r[k * 5]}, outside [0, ${N}) for input ${fmtShape(x.shape)}`);
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
              acc += taps[t + 1] * xs[base + taps[t]] + taps[t + 3] * xs[base + taps[t + 2]] + taps[t + 5] * xs[base + taps[t + 4]] + taps[t + 7] * xs[base + taps[t + 6]];
            }
            o[(k * C + c) * plane + ph * g.PW + pw] = acc / q.count;
          }
        }
      }
    }
    return;
  }
  const levels: Record<string, string> = sel ? { levels: 'i32' } : {};
  const code = `${kernelHeader({ uniforms: STRUCT, read: { x: 'f32', rois: 'f32', ...levels }, write: { y: 'f32' }, wg: WG, preamble: '' })}
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let pw = i % p.PW;
  let ph = (i / p.PW) % p.PH;
  let c = (i / (p.PW * p.PH)) % p.C;
  let k = i / (p.PW * p.PH * p.C);
  ${sel ? 'if (levels[k] != p.level) { return; }' : ''}
  let q = roi_geom(k);
  if ((q.b < 0) | (q.b >= i32(p.N))) { y[i] = p.fill; return; }
  let base = (u32(q.b) * p.C + c) * p.H * p.W;
  var acc = 0.0;
  for (var iy = 0; iy < q.gh; iy++) {
    let ly = lin(sample_at(q.sh, q.bh, q.gh, ph, iy), p.H);
    if (!ly.ok) { continue; }
    let r0 = base + ly.lo * p.W;
    let r1 = base + ly.hi * p.W;
    for (var ix = 0; ix < q.gw; ix++) {
      let lx = lin(sample_at(q.sw, q.bw, q.gw, pw, ix), p.W);
      if (!lx.ok) { continue; }
      acc += ly.wl * lx.wl * x[r0 + lx.lo] + ly.wl * lx.wh * x[r0 + lx.hi] + ly.wh * lx.wl * x[r1 + lx.lo] + ly.wh * lx.wh * x[r1 + lx.hi];
    }
  }
  y[i] = acc / q.count;
}`;
  // the helpers need p and rois, so they follow the bindings
  const k = runtime().kernel('roi-align.forward', injectAfterBindings(code, GEOM_WGSL));
  const bufs: Record<string, ReturnType<Tensor['binding']>> = { x: x.binding(), rois: rois.binding(), y: out.binding() };
  if (sel) bufs.levels = sel.levels.binding();
  runtime().dispatch(k, bufs, uniformsOf(g, out.size, x.shape, K, sel?.level ?? -1), grid1(Math.ceil(out.size / WG)));
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
  const levels: Record<string, string> = sel ? { levels: 'i32' } : {};
  const code = `${kernelHeader({ uniforms: STRUCT, read: { dy: 'f32', rois: 'f32', ...levels }, write: { dx: 'f32' }, wg: WG })}
  let i = (wid.x + wid.y * nwg.x) * ${WG}u + li;
  if (i >= p.n) { return; }
  let xw = i % p.W;
  let yh = (i / p.W) % p.H;
  let c = (i / (p.W * p.H)) % p.C;
  let b = i32(i / (p.W * p.H * p.C));
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    ${sel ? 'if (levels[k] != p.level) { continue; }' : ''}
    let q = roi_geom(k);
    if ((q.b != b) | (q.gh <= 0) | (q.gw <= 0)) { continue; }
    let ry = candidates(yh, q.sh, q.bh, q.gh, p.PH);
    if (ry.x > ry.y) { continue; }
    let rx = candidates(xw, q.sw, q.bw, q.gw, p.PW);
    if (rx.x > rx.y) { continue; }
    let gbase = (k * p.C + c) * p.PH * p.PW;
    var roi_acc = 0.0;
    for (var jy = ry.x; jy <= ry.y; jy++) {
      let ph = u32(jy / q.gh);
      let wy = weight_of(yh, sample_at(q.sh, q.bh, q.gh, ph, jy % q.gh), p.H);
      if (wy == 0.0) { continue; }
      var row = 0.0;
      for (var jx = rx.x; jx <= rx.y; jx++) {
        let pw = u32(jx / q.gw);
        let wx = weight_of(xw, sample_at(q.sw, q.bw, q.gw, pw, jx % q.gw), p.W);
        row += wx * dy[gbase + ph * p.PW + pw];
      }
      roi_acc += wy * row;
    }
    acc += roi_acc / f32(q.gh * q.gw);
  }
  dx[i] = acc;
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
  const kern = runtime().kernel('roi-align.backward', injectAfterBindings(code, helpers));
  const bufs: Record<string, ReturnType<Tensor['binding']>> = { dy: grad.binding(), rois: rois.binding(), dx: dx.binding() };
  if (sel) bufs.levels = sel.levels.binding();
  runtime().dispatch(kern, bufs, uniformsOf(g, dx.size, inputShape, K, sel?.level ?? -1), grid1(Math.ceil(dx.size / WG)));
  return dx;
}
