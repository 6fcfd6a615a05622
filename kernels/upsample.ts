// Bilinear upsampling of x [..., H, W] (NCHW or CHW) with PyTorch's coordinate rules
// (aten/src/ATen/native/UpSample.h): per dimension, ratio = (in − 1)/(out − 1) with align_corners
// (0 when out = 1), else 1/scale_factor when a scale factor is given, else in/out; the source
// coordinate is ratio·dst (align_corners) or max(ratio·(dst + 0.5) − 0.5, 0); a dimension whose
// size does not change is copied. The backward gathers, for each input element, from the outputs
// whose interpolation reads it, so it is deterministic.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { linearKernel } from './wgsl.js';
import { Tensor, shapeSize, type Shape } from './tensor.js';
import { nearestIndex } from './dims.js';

const WG = 256;

export interface UpsampleOptions {
  /** output [OH, OW]; give this or scaleFactor */
  size?: readonly [number, number];
  /** output = ⌊in · scale⌋ per dim */
  scaleFactor?: number | readonly [number, number];
  alignCorners?: boolean;
}

/** The resolved geometry: sizes and the per-dimension source-coordinate ratio. */
export interface UpsampleGeometry {
  H: number;
  W: number;
  OH: number;
  OW: number;
  ratioH: number;
  ratioW: number;
  alignCorners: boolean;
}

/** PyTorch's area_pixel_compute_scale. */
function ratioOf(inSize: number, outSize: number, alignCorners: boolean, scale: number | undefined): number {
  if (alignCorners) return outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  return scale !== undefined && scale > 0 ? 1 / scale : inSize / outSize;
}

export function upsampleGeometry(op: string, x: Tensor, opts: UpsampleOptions): UpsampleGeometry {
  check(x.rank === 3 || x.rank === 4, op, `expects an input [N, C, H, W] or [C, H, W], got ${fmtShape(x.shape)}`);
  check(x.dtype === 'f32', op, `needs an f32 input, got ${x.dtype} ${fmtShape(x.shape)}`);
  const [H, W] = x.shape.slice(-2);
  check(H > 0 && W > 0, op, `input ${fmtShape(x.shape)} has an empty plane`);
  check((opts.size === undefined) !== (opts.scaleFactor === undefined), op, 'give exactly one of size and scaleFactor');
  const alignCorners = Boolean(opts.alignCorners);
  let OH: number, OW: number;
  let scales: [number | undefined, number | undefined] = [undefined, undefined];
  if (opts.size) {
    [OH, OW] = opts.size;
  } else {
    const sf = opts.scaleFactor!;
    scales = typeof sf === 'number' ? [sf, sf] : [sf[0], sf[1]];
    check(scales[0]! > 0 && scales[1]! > 0, op, `scale factors must be positive, got ${fmtShape(scales as number[])}`);
    OH = Math.floor(H * scales[0]!);
    OW = Math.floor(W * scales[1]!);
  }
  check(Number.isInteger(OH) && Number.isInteger(OW) && OH > 0 && OW > 0, op, `output size ${OH}x${OW} for input ${fmtShape(x.shape)} must be positive integers`);
  return { H, W, OH, OW, ratioH: ratioOf(H, OH, alignCorners, scales[0]), ratioW: ratioOf(W, OW, alignCorners, scales[1]), alignCorners };
}

interface Lerp {
  i0: number;
  i1: number;
  /** weight of i1; i0 gets 1 − l1 */
  l1: number;
}

/** PyTorch's compute_source_index_and_lambda (with guard_index_and_lambda). */
function lerpCPU(dst: number, inSize: number, outSize: number, ratio: number, alignCorners: boolean): Lerp {
  if (inSize === outSize) return { i0: dst, i1: dst, l1: 0 };
  const src = alignCorners ? ratio * dst : Math.max(ratio * (dst + 0.5) - 0.5, 0);
  const i0 = Math.min(Math.floor(src), inSize - 1);
  const l1 = Math.min(Math.max(src - i0, 0), 1);
  return { i0, i1: i0 < inSize - 1 ? i0 + 1 : i0, l1 };
}

const UNIFORMS = { n: 'u32', H: 'u32', W: 'u32', OH: 'u32', OW: 'u32', ratioH: 'f32', ratioW: 'f32', align: 'u32' };

const LERP_WGSL = /* wgsl */ `
struct Lerp { i0: u32, i1: u32, l1: f32 }
fn lerp_of(dst: u32, inSize: u32, outSize: u32, ratio: f32) -> Lerp {
  if (inSize == outSize) { return Lerp(dst, dst, 0.0); }
  let src = select(max(ratio * (f32(dst) + 0.5) - 0.5, 0.0), ratio * f32(dst), p.align != 0u);
  let i0 = min(u32(floor(src)), inSize - 1u);
  let l1 = clamp(src - f32(i0), 0.0, 1.0);
  return Lerp(i0, select(i0, i0 + 1u, i0 < inSize - 1u), l1);
}`;

const BACKWARD_WGSL = /* wgsl */ `${LERP_WGSL}
// The weight output position dst gives to input position at.
fn weight_of(at: u32, dst: u32, inSize: u32, outSize: u32, ratio: f32) -> f32 {
  let l = lerp_of(dst, inSize, outSize, ratio);
  return select(0.0, 1.0 - l.l1, l.i0 == at) + select(0.0, l.l1, l.i1 == at);
}
// Output positions whose stencil may read input position at: their source coordinate lies in
// (at − 1, at + 1); the inverse map is widened by one step on each side against rounding.
fn candidates(at: u32, inSize: u32, outSize: u32, ratio: f32) -> vec2<u32> {
  if (inSize == outSize) { return vec2<u32>(at, at); }
  if (ratio == 0.0) { return vec2<u32>(0u, outSize - 1u); }
  let a = f32(at);
  var lo: f32; var hi: f32;
  if (p.align != 0u) { lo = (a - 1.0) / ratio; hi = (a + 1.0) / ratio; }
  else { lo = (a - 0.5) / ratio - 0.5; hi = (a + 1.5) / ratio - 0.5; }
  return vec2<u32>(u32(max(floor(lo) - 1.0, 0.0)), u32(min(ceil(hi) + 1.0, f32(outSize - 1u))));
}`;

const uniformsOf = (g: UpsampleGeometry, n: number) => ({ n, H: g.H, W: g.W, OH: g.OH, OW: g.OW, ratioH: g.ratioH, ratioW: g.ratioW, align: Number(g.alignCorners) });

/** y[oh, ow] = Σ over the two rows and two columns of the bilinear stencil of weight_h · weight_w · x. */
export function upsampleBilinear(x: Tensor, opts: UpsampleOptions): Tensor {
  const op = 'upsampleBilinear';
  const g = upsampleGeometry(op, x, opts);
  checkInputs(op, [x]);
  const out = Tensor.empty([...x.shape.slice(0, -2), g.OH, g.OW], 'f32', x.device, op);
  if (x.device === 'cpu') {
    const xs = x.cpu, o = out.cpu;
    const planes = x.size / (g.H * g.W);
    const rows = Array.from({ length: g.OH }, (_, d) => lerpCPU(d, g.H, g.OH, g.ratioH, g.alignCorners));
    const cols = Array.from({ length: g.OW }, (_, d) => lerpCPU(d, g.W, g.OW, g.ratioW, g.alignCorners));
    for (let pl = 0; pl < planes; pl++) {
      const at = (h: number, w: number): number => xs[(pl * g.H + h) * g.W + w];
      for (let oh = 0; oh < g.OH; oh++) {
        const r = rows[oh];
        for (let ow = 0; ow < g.OW; ow++) {
          const c = cols[ow];
          const top = (1 - c.l1) * at(r.i0, c.i0) + c.l1 * at(r.i0, c.i1);
          const bottom = (1 - c.l1) * at(r.i1, c.i0) + c.l1 * at(r.i1, c.i1);
          o[(pl * g.OH + oh) * g.OW + ow] = (1 - r.l1) * top + r.l1 * bottom;
        }
      }
    }
    return out;
  }
  const k = runtime().kernel('upsample.bilinear', BILINEAR_WGSL);
  runtime().dispatch(k, { x: x.binding(), y: out.binding() }, uniformsOf(g, out.size), grid1(Math.ceil(out.size / WG)));
  return out;
}

/**
 * dx[h, w] = Σ_{oh, ow} g[oh, ow] · a_h(oh) · a_w(ow), where a_h(oh) is the weight row oh gives
 * to input row h (1 − l1 at i0, l1 at i1), likewise for columns.
 */
export function upsampleBilinearBackward(grad: Tensor, inputShape: Shape, geometry: UpsampleGeometry): Tensor {
  const op = 'upsampleBilinearBackward';
  checkInputs(op, [grad]);
  const g = geometry;
  const shape = [...inputShape.slice(0, -2), g.OH, g.OW];
  check(grad.shape.join() === shape.join(), op, () => `gradient ${fmtShape(grad.shape)} does not have the output shape ${fmtShape(shape)}`);
  const dx = Tensor.empty(inputShape, 'f32', grad.device, op);
  if (grad.device === 'cpu') {
    const o = dx.cpu, gs = grad.cpu;
    o.fill(0);
    const planes = shapeSize(inputShape) / (g.H * g.W);
    const rows = Array.from({ length: g.OH }, (_, d) => lerpCPU(d, g.H, g.OH, g.ratioH, g.alignCorners));
    const cols = Array.from({ length: g.OW }, (_, d) => lerpCPU(d, g.W, g.OW, g.ratioW, g.alignCorners));
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < g.OH; oh++) {
        const r = rows[oh];
        for (let ow = 0; ow < g.OW; ow++) {
          const c = cols[ow];
          const v = gs[(pl * g.OH + oh) * g.OW + ow];
          const add = (h: number, w: number, wt: number): void => {
            o[(pl * g.H + h) * g.W + w] += v * wt;
          };
          add(r.i0, c.i0, (1 - r.l1) * (1 - c.l1));
          add(r.i0, c.i1, (1 - r.l1) * c.l1);
          add(r.i1, c.i0, r.l1 * (1 - c.l1));
          add(r.i1, c.i1, r.l1 * c.l1);
        }
      }
    }
    return dx;
  }
  const k = runtime().kernel('upsample.bilinear.backward', BILINEAR_BACKWARD_WGSL);
  runtime().dispatch(k, { dy: grad.binding(), dx: dx.binding() }, uniformsOf(g, dx.size), grid1(Math.ceil(dx.size / WG)));
  return dx;
}

// ---------------------------------------------------------------- the kernels (generated once, at load)

const BILINEAR_WGSL = linearKernel(
  { preamble: LERP_WGSL, uniforms: UNIFORMS, read: { x: 'f32' }, write: { y: 'f32' }, wg: WG, bound: 'n' },
  /* wgsl */ `  let ow = i % p.OW;
  let oh = (i / p.OW) % p.OH;
  let base = (i / (p.OW * p.OH)) * p.H * p.W;
  let r = lerp_of(oh, p.H, p.OH, p.ratioH);
  let c = lerp_of(ow, p.W, p.OW, p.ratioW);
  let row0 = base + r.i0 * p.W;
  let row1 = base + r.i1 * p.W;
  let top = (1.0 - c.l1) * x[row0 + c.i0] + c.l1 * x[row0 + c.i1];
  let bottom = (1.0 - c.l1) * x[row1 + c.i0] + c.l1 * x[row1 + c.i1];
  y[i] = (1.0 - r.l1) * top + r.l1 * bottom;`,
);

const BILINEAR_BACKWARD_WGSL = linearKernel(
  { preamble: BACKWARD_WGSL, uniforms: UNIFORMS, read: { dy: 'f32' }, write: { dx: 'f32' }, wg: WG, bound: 'n' },
  /* wgsl */ `  let iw = i % p.W;
  let ih = (i / p.W) % p.H;
  let base = (i / (p.W * p.H)) * p.OH * p.OW;
  let rows = candidates(ih, p.H, p.OH, p.ratioH);
  let cols = candidates(iw, p.W, p.OW, p.ratioW);
  var acc = 0.0;
  for (var oh = rows.x; oh <= rows.y; oh++) {
    let wh = weight_of(ih, oh, p.H, p.OH, p.ratioH);
    if (wh == 0.0) { continue; }
    var row = 0.0;
    for (var ow = cols.x; ow <= cols.y; ow++) {
      row += weight_of(iw, ow, p.W, p.OW, p.ratioW) * dy[base + oh * p.OW + ow];
    }
    acc += wh * row;
  }
  dx[i] = acc;`,
);

// ---------------------------------------------------------------- nearest (FPN's top-down path)
// PyTorch's F.interpolate(mode='nearest') (aten/src/ATen/native/UpSample.h, nearest_idx): per
// dimension, src = dst when the size is unchanged, dst >> 1 when it doubles, else
// min(⌊f32(dst) · scale⌋, in − 1) in f32, with scale = f32(1 / scale_factor) when a scale factor is
// given, else f32(in) / out. The source index is monotone in dst, so the outputs that read one input
// index form a contiguous range: the backward finds it by binary search over the same map and sums
// that block (each input element owns its sum: deterministic, no atomics).

/** The f32 scales of nearest upsampling (PyTorch's compute_scales_value), from the resolved geometry. */
export interface NearestGeometry {
  H: number;
  W: number;
  OH: number;
  OW: number;
  scaleH: number;
  scaleW: number;
}

/** Resolves sizes as upsampleGeometry (size, or ⌊in · scale_factor⌋), alignCorners not allowed. */
export function nearestGeometry(op: string, x: Tensor, opts: UpsampleOptions): NearestGeometry {
  check(!opts.alignCorners, op, 'alignCorners applies to linear modes only (as in PyTorch)');
  const g = upsampleGeometry(op, x, opts);
  // ratioOf gives 1/scale_factor or in/out: PyTorch computes them in float
  return { H: g.H, W: g.W, OH: g.OH, OW: g.OW, scaleH: Math.fround(g.ratioH), scaleW: Math.fround(g.ratioW) };
}

/** PyTorch's nearest_idx, in f32 as its CPU and CUDA kernels compute it (the WGSL twin of nearestIndex). */
const NEAREST_WGSL = /* wgsl */ `
fn nearest(dst: u32, inSize: u32, outSize: u32, scale: f32) -> u32 {
  if (outSize == inSize) { return dst; }
  if (outSize == 2u * inSize) { return dst >> 1u; }
  return min(u32(floor(f32(dst) * scale)), inSize - 1u);
}
// the first dst in [0, outSize] whose source index is >= at
fn first_reading(at: u32, inSize: u32, outSize: u32, scale: f32) -> u32 {
  var lo = 0u;
  var hi = outSize;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (nearest(mid, inSize, outSize, scale) < at) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}`;

const NEAREST_UNIFORMS = { n: 'u32', H: 'u32', W: 'u32', OH: 'u32', OW: 'u32', scaleH: 'f32', scaleW: 'f32' };
const nearestUniforms = (g: NearestGeometry, n: number) => ({ n, H: g.H, W: g.W, OH: g.OH, OW: g.OW, scaleH: g.scaleH, scaleW: g.scaleW });

/** y[oh, ow] = x[nearest(oh), nearest(ow)] for x [N, C, H, W] or [C, H, W] (F.interpolate(mode='nearest')). */
export function upsampleNearest(x: Tensor, opts: UpsampleOptions): Tensor {
  const op = 'upsampleNearest';
  const g = nearestGeometry(op, x, opts);
  checkInputs(op, [x]);
  const out = Tensor.empty([...x.shape.slice(0, -2), g.OH, g.OW], 'f32', x.device, op);
  if (x.device === 'cpu') {
    const xs = x.cpu, o = out.cpu;
    const planes = x.size / (g.H * g.W);
    const rows = Array.from({ length: g.OH }, (_, d) => nearestIndex(d, g.H, g.OH, g.scaleH));
    const cols = Array.from({ length: g.OW }, (_, d) => nearestIndex(d, g.W, g.OW, g.scaleW));
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < g.OH; oh++) {
        for (let ow = 0; ow < g.OW; ow++) o[(pl * g.OH + oh) * g.OW + ow] = xs[(pl * g.H + rows[oh]) * g.W + cols[ow]];
      }
    }
    return out;
  }
  const k = runtime().kernel('upsample.nearest', linearKernel(
    { preamble: NEAREST_WGSL, uniforms: NEAREST_UNIFORMS, read: { x: 'f32' }, write: { y: 'f32' }, wg: WG, bound: 'n' },
    `  let ow = i % p.OW;
  let oh = (i / p.OW) % p.OH;
  let plane = i / (p.OW * p.OH);
  y[i] = x[(plane * p.H + nearest(oh, p.H, p.OH, p.scaleH)) * p.W + nearest(ow, p.W, p.OW, p.scaleW)];`,
  ));
  runtime().dispatch(k, { x: x.binding(), y: out.binding() }, nearestUniforms(g, out.size), grid1(Math.ceil(out.size / WG)));
  return out;
}

/** dx[h, w] = Σ of grad over the block of outputs that read (h, w); an input no output reads gets 0. */
export function upsampleNearestBackward(grad: Tensor, inputShape: Shape, geometry: NearestGeometry): Tensor {
  const op = 'upsampleNearestBackward';
  checkInputs(op, [grad]);
  const g = geometry;
  const shape = [...inputShape.slice(0, -2), g.OH, g.OW];
  check(grad.shape.join() === shape.join(), op, () => `gradient ${fmtShape(grad.shape)} does not have the output shape ${fmtShape(shape)}`);
  const dx = Tensor.empty(inputShape, 'f32', grad.device, op);
  if (dx.size === 0) return dx;
  if (grad.device === 'cpu') {
    const o = dx.cpu, gs = grad.cpu;
    o.fill(0);
    const planes = shapeSize(inputShape) / (g.H * g.W);
    const rows = Array.from({ length: g.OH }, (_, d) => nearestIndex(d, g.H, g.OH, g.scaleH));
    const cols = Array.from({ length: g.OW }, (_, d) => nearestIndex(d, g.W, g.OW, g.scaleW));
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < g.OH; oh++) {
        for (let ow = 0; ow < g.OW; ow++) o[(pl * g.H + rows[oh]) * g.W + cols[ow]] += gs[(pl * g.OH + oh) * g.OW + ow];
      }
    }
    return dx;
  }
  const k = runtime().kernel('upsample.nearestBackward', linearKernel(
    { preamble: NEAREST_WGSL, uniforms: NEAREST_UNIFORMS, read: { dy: 'f32' }, write: { dx: 'f32' }, wg: WG, bound: 'n' },
    `  let iw = i % p.W;
  let ih = (i / p.W) % p.H;
  let base = (i / (p.W * p.H)) * p.OH * p.OW;
  let r0 = first_reading(ih, p.H, p.OH, p.scaleH);
  let r1 = first_reading(ih + 1u, p.H, p.OH, p.scaleH);
  let c0 = first_reading(iw, p.W, p.OW, p.scaleW);
  let c1 = first_reading(iw + 1u, p.W, p.OW, p.scaleW);
  var acc = 0.0;
  for (var oh = r0; oh < r1; oh++) {
    for (var ow = c0; ow < c1; ow++) { acc += dy[base + oh * p.OW + ow]; }
  }
  dx[i] = acc;`,
  ));
  runtime().dispatch(k, { dy: grad.binding(), dx: dx.binding() }, nearestUniforms(g, dx.size), grid1(Math.ceil(dx.size / WG)));
  return dx;
}
