// 2-D pooling over the last two dims of x [..., H, W] (NCHW or CHW): max pool with argmax indices,
// average pool, adaptive average pool, each with its backward. Output sizes, window clipping and
// divisors follow PyTorch exactly (aten/src/ATen/native/Pool.h and the CPU kernels). Backward
// kernels run one invocation per input element and gather from the windows that cover it, so
// they are deterministic (no float atomics) and need no zero-fill.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { linearKernel, IS_NAN_WGSL } from './wgsl.js';
import { pairOf, type Pair } from './dims.js';
import { byRows, overBinding } from './split.js';
import { Tensor, shapeSize, type Shape } from './tensor.js';

const WG = 256;

export type Pool2dPair = Pair;

export interface Pool2dOptions {
  kernelSize: Pool2dPair;
  /** defaults to kernelSize */
  stride?: Pool2dPair;
  padding?: Pool2dPair;
  /** output size by ceil instead of floor; a window must still start inside the input or the left padding */
  ceilMode?: boolean;
}

export interface MaxPool2dOptions extends Pool2dOptions {
  dilation?: Pool2dPair;
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** divide by the window size including padding (default true) */
  countIncludePad?: boolean;
}

/** Pooling geometry along H and W, resolved and validated. */
export interface PoolGeometry {
  H: number;
  W: number;
  OH: number;
  OW: number;
  k: [number, number];
  s: [number, number];
  p: [number, number];
  d: [number, number];
  ceilMode: boolean;
  countIncludePad: boolean;
}

/**
 * PyTorch's pooling_output_shape: ⌊(in + 2p − d(k−1) − 1 + (ceil ? s−1 : 0)) / s⌋ + 1, minus one
 * in ceil mode when the last window would start past the input and the left padding.
 */
export function poolOutputSize(inSize: number, k: number, s: number, p: number, d: number, ceilMode: boolean): number {
  let out = Math.floor((inSize + 2 * p - d * (k - 1) - 1 + (ceilMode ? s - 1 : 0)) / s) + 1;
  if (ceilMode && (out - 1) * s >= inSize + p) out--;
  return out;
}

/** Resolves and checks the pooling options for x [..., H, W]. */
export function poolGeometry(op: string, x: Tensor, opts: MaxPool2dOptions & AvgPool2dOptions): PoolGeometry {
  check(x.rank === 3 || x.rank === 4, op, `expects an input [N, C, H, W] or [C, H, W], got ${fmtShape(x.shape)}`);
  check(x.dtype === 'f32', op, `needs an f32 input, got ${x.dtype} ${fmtShape(x.shape)}`);
  check(x.size > 0, op, `input ${fmtShape(x.shape)} is empty`);
  const k = pairOf(opts.kernelSize);
  const s = pairOf(opts.stride ?? opts.kernelSize);
  const p = pairOf(opts.padding ?? 0);
  const d = pairOf(opts.dilation ?? 1);
  const ints = [...k, ...s, ...p, ...d];
  check(ints.every(Number.isInteger), op, `kernel size, stride, padding and dilation must be integers, got k=${k} s=${s} p=${p} d=${d}`);
  check(k[0] > 0 && k[1] > 0 && s[0] > 0 && s[1] > 0 && d[0] > 0 && d[1] > 0 && p[0] >= 0 && p[1] >= 0, op,
    `kernel size, stride and dilation must be positive and padding non-negative, got k=${k} s=${s} p=${p} d=${d}`);
  const [H, W] = x.shape.slice(-2);
  for (let a = 0; a < 2; a++) {
    const effective = (k[a] - 1) * d[a] + 1;
    check(p[a] <= Math.floor(effective / 2), op, `padding ${fmtShape(p)} exceeds half the effective kernel size ${effective}`);
  }
  const OH = poolOutputSize(H, k[0], s[0], p[0], d[0], Boolean(opts.ceilMode));
  const OW = poolOutputSize(W, k[1], s[1], p[1], d[1], Boolean(opts.ceilMode));
  // in ceil mode PyTorch accepts a kernel a little larger than the padded input (one clipped window)
  check(OH >= 1 && OW >= 1, op, `kernel ${fmtShape(k)} (stride ${fmtShape(s)}, padding ${fmtShape(p)}, dilation ${fmtShape(d)}) does not fit the input ${fmtShape(x.shape)}: output size ${OH}x${OW}`);
  return { H, W, OH, OW, k, s, p, d, ceilMode: Boolean(opts.ceilMode), countIncludePad: opts.countIncludePad ?? true };
}

const outShapeOf = (x: Shape, OH: number, OW: number): number[] => [...x.slice(0, -2), OH, OW];

function geometryUniforms(g: PoolGeometry, n: number, planes: number): Record<string, number> {
  return {
    n, planes, H: g.H, W: g.W, OH: g.OH, OW: g.OW, kh: g.k[0], kw: g.k[1], sh: g.s[0], sw: g.s[1],
    ph: g.p[0], pw: g.p[1], dh: g.d[0], dw: g.d[1], includePad: Number(g.countIncludePad), ninf: -Infinity,
  };
}

const GEOMETRY_UNIFORMS = {
  n: 'u32', planes: 'u32', H: 'i32', W: 'i32', OH: 'i32', OW: 'i32', kh: 'i32', kw: 'i32', sh: 'i32', sw: 'i32',
  ph: 'i32', pw: 'i32', dh: 'i32', dw: 'i32', includePad: 'u32', ninf: 'f32',
};
const ADAPTIVE_UNIFORMS = { n: 'u32', H: 'u32', W: 'u32', OH: 'u32', OW: 'u32' };

/** One invocation per element of `n`, f32 arrays named in `read` and `write` (an entry 'i32:idx' is an i32 array). */
function poolKernel(uniforms: Record<string, string>, preamble: string, read: string[], write: string[], body: string): string {
  const arrays = (names: string[]) => Object.fromEntries(names.map((n) => (n.startsWith('i32:') ? [n.slice(4), 'i32'] : [n, 'f32'])));
  return linearKernel({ preamble, uniforms, read: arrays(read), write: arrays(write), wg: WG, bound: 'n' }, body);
}

/** Output rows (or columns) whose window may cover input position `at`: the range [lo, hi]. */
const COVER_WGSL = /* wgsl */ `
fn cover(at: i32, k: i32, s: i32, pad: i32, d: i32, outSize: i32) -> vec2<i32> {
  let first = at + pad - (k - 1) * d;
  let lo = select(0, (first + s - 1) / s, first > 0);
  let hi = min((at + pad) / s, outSize - 1);
  return vec2<i32>(lo, hi);
}`;


/** The largest bytes per row along dim 0 among an op's input and output (for chunking by rows). */
const rowBytes = (...ts: Tensor[]): number => Math.max(...ts.map((t) => (t.size / t.shape[0]) * 4));

// ---------------------------------------------------------------- max pool

/**
 * out = max over each (dilated) window, padding counting as −∞; indices (i32) = h·W + w of the
 * first maximum in the plane (a NaN wins, as in PyTorch). A window that holds no input element
 * gives −∞ and index −1.
 */
export function maxPool2d(x: Tensor, opts: MaxPool2dOptions): { out: Tensor; indices: Tensor } {
  const op = 'maxPool2d';
  const g = poolGeometry(op, x, opts);
  checkInputs(op, [x]);
  const shape = outShapeOf(x.shape, g.OH, g.OW);
  const out = Tensor.empty(shape, 'f32', x.device, op);
  const indices = Tensor.empty(shape, 'i32', x.device, op);
  const planes = x.size / (g.H * g.W);
  if (x.device === 'cpu') {
    const xs = x.cpu, o = out.cpu, ix = indices.cpu;
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < g.OH; oh++) {
        for (let ow = 0; ow < g.OW; ow++) {
          let best = -Infinity, bestAt = -1;
          for (let a = 0; a < g.k[0]; a++) {
            const ih = oh * g.s[0] - g.p[0] + a * g.d[0];
            if (ih < 0 || ih >= g.H) continue;
            for (let b = 0; b < g.k[1]; b++) {
              const iw = ow * g.s[1] - g.p[1] + b * g.d[1];
              if (iw < 0 || iw >= g.W) continue;
              const v = xs[(pl * g.H + ih) * g.W + iw];
              if (bestAt < 0 || v > best || Number.isNaN(v)) {
                best = v;
                bestAt = ih * g.W + iw;
              }
            }
          }
          const j = (pl * g.OH + oh) * g.OW + ow;
          o[j] = best;
          ix[j] = bestAt;
        }
      }
    }
    return { out, indices };
  }
  if (overBinding(x, out)) {
    for (const t of [out, indices]) t.dispose();
    const [o, i] = byRows(op, [x], rowBytes(x, out), ([xc]) => {
      const r = maxPool2d(xc, opts);
      return [r.out, r.indices];
    });
    return { out: o, indices: i };
  }
  const k = runtime().kernel('pooling.maxPool2d', MAXPOOL_WGSL);
  runtime().dispatch(k, { x: x.binding(), y: out.binding(), idx: indices.binding() }, geometryUniforms(g, out.size, planes), grid1(Math.ceil(out.size / WG)));
  return { out, indices };
}

/** dx[h, w] = Σ g over the windows whose argmax (from maxPool2d) is (h, w). */
export function maxPool2dBackward(grad: Tensor, indices: Tensor, inputShape: Shape, geometry: PoolGeometry): Tensor {
  const op = 'maxPool2dBackward';
  checkInputs(op, [grad, indices]);
  const g = geometry;
  const shape = outShapeOf(inputShape, g.OH, g.OW);
  check(grad.shape.join() === shape.join() && indices.shape.join() === shape.join() && indices.dtype === 'i32', op,
    () => `gradient ${fmtShape(grad.shape)} and i32 indices ${indices.dtype} ${fmtShape(indices.shape)} must both have the output shape ${fmtShape(shape)}`);
  const dx = Tensor.empty(inputShape, 'f32', grad.device, op);
  const planes = shapeSize(inputShape) / (g.H * g.W);
  if (grad.device === 'cpu') {
    const o = dx.cpu, gs = grad.cpu, ix = indices.cpu;
    o.fill(0);
    for (let pl = 0; pl < planes; pl++) {
      for (let j = 0; j < g.OH * g.OW; j++) {
        const at = ix[pl * g.OH * g.OW + j];
        if (at >= 0) o[pl * g.H * g.W + at] += gs[pl * g.OH * g.OW + j];
      }
    }
    return dx;
  }
  if (overBinding(dx, grad)) {
    dx.dispose();
    return byRows(op, [grad, indices], rowBytes(dx, grad), ([gc, ic]) => [maxPool2dBackward(gc, ic, [gc.shape[0], ...inputShape.slice(1)], g)])[0];
  }
  const k = runtime().kernel('pooling.maxPool2d.backward', MAXPOOL_BACKWARD_WGSL);
  runtime().dispatch(k, { dy: grad.binding(), idx: indices.binding(), dx: dx.binding() }, geometryUniforms(g, dx.size, planes), grid1(Math.ceil(dx.size / WG)));
  return dx;
}

// ---------------------------------------------------------------- average pool

/** The clipped window [h0, h1) x [w0, w1) of output (oh, ow) and its divisor, as PyTorch's avg_pool2d. */
function avgWindowCPU(g: PoolGeometry, oh: number, ow: number): { h0: number; h1: number; w0: number; w1: number; div: number } {
  let h0 = oh * g.s[0] - g.p[0], w0 = ow * g.s[1] - g.p[1];
  let h1 = Math.min(h0 + g.k[0], g.H + g.p[0]), w1 = Math.min(w0 + g.k[1], g.W + g.p[1]);
  const poolSize = (h1 - h0) * (w1 - w0);
  h0 = Math.max(h0, 0);
  w0 = Math.max(w0, 0);
  h1 = Math.min(h1, g.H);
  w1 = Math.min(w1, g.W);
  return { h0, h1, w0, w1, div: g.countIncludePad ? poolSize : (h1 - h0) * (w1 - w0) };
}

const AVG_WINDOW_WGSL = /* wgsl */ `
struct Window { h0: i32, h1: i32, w0: i32, w1: i32, div: f32 }
fn avg_window(oh: i32, ow: i32) -> Window {
  let h0 = oh * p.sh - p.ph;
  let w0 = ow * p.sw - p.pw;
  let h1 = min(h0 + p.kh, p.H + p.ph);
  let w1 = min(w0 + p.kw, p.W + p.pw);
  let poolSize = (h1 - h0) * (w1 - w0);
  let ch0 = max(h0, 0); let cw0 = max(w0, 0);
  let ch1 = min(h1, p.H); let cw1 = min(w1, p.W);
  let div = select((ch1 - ch0) * (cw1 - cw0), poolSize, p.includePad != 0u);
  return Window(ch0, ch1, cw0, cw1, f32(div));
}`;

/** out = Σ window / divisor, where divisor = window size clipped to the padded input (countIncludePad) or to the input. */
export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  const op = 'avgPool2d';
  const g = poolGeometry(op, x, opts);
  checkInputs(op, [x]);
  const out = Tensor.empty(outShapeOf(x.shape, g.OH, g.OW), 'f32', x.device, op);
  const planes = x.size / (g.H * g.W);
  if (x.device === 'cpu') {
    const xs = x.cpu, o = out.cpu;
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < g.OH; oh++) {
        for (let ow = 0; ow < g.OW; ow++) {
          const w = avgWindowCPU(g, oh, ow);
          let s = 0;
          for (let ih = w.h0; ih < w.h1; ih++) for (let iw = w.w0; iw < w.w1; iw++) s += xs[(pl * g.H + ih) * g.W + iw];
          o[(pl * g.OH + oh) * g.OW + ow] = w.h0 < w.h1 && w.w0 < w.w1 ? s / w.div : 0;
        }
      }
    }
    return out;
  }
  if (overBinding(x, out)) {
    out.dispose();
    return byRows(op, [x], rowBytes(x, out), ([xc]) => [avgPool2d(xc, opts)])[0];
  }
  const k = runtime().kernel('pooling.avgPool2d', AVGPOOL_WGSL);
  runtime().dispatch(k, { x: x.binding(), y: out.binding() }, geometryUniforms(g, out.size, planes), grid1(Math.ceil(out.size / WG)));
  return out;
}

/** dx[h, w] = Σ g[oh, ow] / divisor(oh, ow) over the windows that cover (h, w). */
export function avgPool2dBackward(grad: Tensor, inputShape: Shape, geometry: PoolGeometry): Tensor {
  const op = 'avgPool2dBackward';
  checkInputs(op, [grad]);
  const g = geometry;
  const shape = outShapeOf(inputShape, g.OH, g.OW);
  check(grad.shape.join() === shape.join(), op, () => `gradient ${fmtShape(grad.shape)} does not have the output shape ${fmtShape(shape)}`);
  const dx = Tensor.empty(inputShape, 'f32', grad.device, op);
  const planes = shapeSize(inputShape) / (g.H * g.W);
  if (grad.device === 'cpu') {
    const o = dx.cpu, gs = grad.cpu;
    o.fill(0);
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < g.OH; oh++) {
        for (let ow = 0; ow < g.OW; ow++) {
          const w = avgWindowCPU(g, oh, ow);
          const v = gs[(pl * g.OH + oh) * g.OW + ow] / w.div;
          for (let ih = w.h0; ih < w.h1; ih++) for (let iw = w.w0; iw < w.w1; iw++) o[(pl * g.H + ih) * g.W + iw] += v;
        }
      }
    }
    return dx;
  }
  if (overBinding(dx, grad)) {
    dx.dispose();
    return byRows(op, [grad], rowBytes(dx, grad), ([gc]) => [avgPool2dBackward(gc, [gc.shape[0], ...inputShape.slice(1)], g)])[0];
  }
  const k = runtime().kernel('pooling.avgPool2d.backward', AVGPOOL_BACKWARD_WGSL);
  runtime().dispatch(k, { dy: grad.binding(), dx: dx.binding() }, geometryUniforms(g, dx.size, planes), grid1(Math.ceil(dx.size / WG)));
  return dx;
}

// ---------------------------------------------------------------- adaptive average pool

/** PyTorch's adaptive bins: output i averages [⌊i·in/out⌋, ⌈(i+1)·in/out⌉). */
const binStart = (i: number, inSize: number, outSize: number): number => Math.floor((i * inSize) / outSize);
const binEnd = (i: number, inSize: number, outSize: number): number => Math.ceil(((i + 1) * inSize) / outSize);

const ADAPTIVE_BINS_WGSL = /* wgsl */ `
fn bin_start(i: u32, inSize: u32, outSize: u32) -> u32 { return (i * inSize) / outSize; }
fn bin_end(i: u32, inSize: u32, outSize: u32) -> u32 { return ((i + 1u) * inSize + outSize - 1u) / outSize; }`;

function adaptiveShape(op: string, x: Tensor, size: Pool2dPair): [number, number] {
  check(x.rank === 3 || x.rank === 4, op, `expects an input [N, C, H, W] or [C, H, W], got ${fmtShape(x.shape)}`);
  check(x.dtype === 'f32', op, `needs an f32 input, got ${x.dtype} ${fmtShape(x.shape)}`);
  check(x.shape[x.rank - 2] > 0 && x.shape[x.rank - 1] > 0, op, `input ${fmtShape(x.shape)} has an empty plane`);
  const [OH, OW] = pairOf(size);
  check(Number.isInteger(OH) && Number.isInteger(OW) && OH > 0 && OW > 0, op, `output size must be positive integers, got ${OH}x${OW}`);
  return [OH, OW];
}

/** out[i, j] = mean of the bin rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) x the bin columns likewise. */
export function adaptiveAvgPool2d(x: Tensor, size: Pool2dPair): Tensor {
  const op = 'adaptiveAvgPool2d';
  const [OH, OW] = adaptiveShape(op, x, size);
  checkInputs(op, [x]);
  const [H, W] = x.shape.slice(-2);
  const out = Tensor.empty(outShapeOf(x.shape, OH, OW), 'f32', x.device, op);
  if (x.device === 'cpu') {
    const xs = x.cpu, o = out.cpu;
    const planes = x.size / (H * W);
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < OH; oh++) {
        const h0 = binStart(oh, H, OH), h1 = binEnd(oh, H, OH);
        for (let ow = 0; ow < OW; ow++) {
          const w0 = binStart(ow, W, OW), w1 = binEnd(ow, W, OW);
          let s = 0;
          for (let ih = h0; ih < h1; ih++) for (let iw = w0; iw < w1; iw++) s += xs[(pl * H + ih) * W + iw];
          o[(pl * OH + oh) * OW + ow] = s / ((h1 - h0) * (w1 - w0));
        }
      }
    }
    return out;
  }
  const k = runtime().kernel('pooling.adaptiveAvgPool2d', ADAPTIVE_WGSL);
  runtime().dispatch(k, { x: x.binding(), y: out.binding() }, { n: out.size, H, W, OH, OW }, grid1(Math.ceil(out.size / WG)));
  return out;
}

/** dx[h, w] = Σ g[i, j] / |bin(i, j)| over the bins that hold (h, w): rows i in [⌊h·OH/H⌋, ⌈(h+1)·OH/H⌉). */
export function adaptiveAvgPool2dBackward(grad: Tensor, inputShape: Shape): Tensor {
  const op = 'adaptiveAvgPool2dBackward';
  checkInputs(op, [grad]);
  check(inputShape.length === grad.rank && inputShape.slice(0, -2).join() === grad.shape.slice(0, -2).join(), op,
    () => `gradient ${fmtShape(grad.shape)} does not match input ${fmtShape(inputShape)}`);
  const [H, W] = inputShape.slice(-2);
  const [OH, OW] = grad.shape.slice(-2);
  const dx = Tensor.empty(inputShape, 'f32', grad.device, op);
  if (grad.device === 'cpu') {
    const o = dx.cpu, gs = grad.cpu;
    o.fill(0);
    const planes = dx.size / (H * W);
    for (let pl = 0; pl < planes; pl++) {
      for (let oh = 0; oh < OH; oh++) {
        const h0 = binStart(oh, H, OH), h1 = binEnd(oh, H, OH);
        for (let ow = 0; ow < OW; ow++) {
          const w0 = binStart(ow, W, OW), w1 = binEnd(ow, W, OW);
          const v = gs[(pl * OH + oh) * OW + ow] / ((h1 - h0) * (w1 - w0));
          for (let ih = h0; ih < h1; ih++) for (let iw = w0; iw < w1; iw++) o[(pl * H + ih) * W + iw] += v;
        }
      }
    }
    return dx;
  }
  const k = runtime().kernel('pooling.adaptiveAvgPool2d.backward', ADAPTIVE_BACKWARD_WGSL);
  runtime().dispatch(k, { dy: grad.binding(), dx: dx.binding() }, { n: dx.size, H, W, OH, OW }, grid1(Math.ceil(dx.size / WG)));
  return dx;
}

// ---------------------------------------------------------------- the kernels (generated once, at load)

const MAXPOOL_WGSL = poolKernel(GEOMETRY_UNIFORMS, IS_NAN_WGSL, ['x'], ['y', 'i32:idx'], /* wgsl */ `  let ow = i32(i % u32(p.OW));
  let oh = i32((i / u32(p.OW)) % u32(p.OH));
  let base = (i / u32(p.OW * p.OH)) * u32(p.H * p.W);
  var best = p.ninf;
  var bestAt = -1;
  for (var a = 0; a < p.kh; a++) {
    let ih = oh * p.sh - p.ph + a * p.dh;
    if (ih < 0 || ih >= p.H) { continue; }
    for (var b = 0; b < p.kw; b++) {
      let iw = ow * p.sw - p.pw + b * p.dw;
      if (iw < 0 || iw >= p.W) { continue; }
      let at = ih * p.W + iw;
      let v = x[base + u32(at)];
      if (bestAt < 0 || v > best || is_nan(v)) { best = v; bestAt = at; }
    }
  }
  y[i] = best;
  idx[i] = bestAt;`);

const MAXPOOL_BACKWARD_WGSL = poolKernel(GEOMETRY_UNIFORMS, COVER_WGSL, ['dy', 'i32:idx'], ['dx'], /* wgsl */ `  let iw = i32(i % u32(p.W));
  let ih = i32((i / u32(p.W)) % u32(p.H));
  let plane = i / u32(p.H * p.W);
  let rows = cover(ih, p.kh, p.sh, p.ph, p.dh, p.OH);
  let cols = cover(iw, p.kw, p.sw, p.pw, p.dw, p.OW);
  let me = ih * p.W + iw;
  var acc = 0.0;
  for (var oh = rows.x; oh <= rows.y; oh++) {
    for (var ow = cols.x; ow <= cols.y; ow++) {
      let j = plane * u32(p.OH * p.OW) + u32(oh * p.OW + ow);
      if (idx[j] == me) { acc += dy[j]; }
    }
  }
  dx[i] = acc;`);

const AVGPOOL_WGSL = poolKernel(GEOMETRY_UNIFORMS, AVG_WINDOW_WGSL, ['x'], ['y'], /* wgsl */ `  let ow = i32(i % u32(p.OW));
  let oh = i32((i / u32(p.OW)) % u32(p.OH));
  let base = (i / u32(p.OW * p.OH)) * u32(p.H * p.W);
  let w = avg_window(oh, ow);
  var s = 0.0;
  for (var ih = w.h0; ih < w.h1; ih++) {
    for (var iw = w.w0; iw < w.w1; iw++) { s += x[base + u32(ih * p.W + iw)]; }
  }
  y[i] = select(0.0, s / w.div, w.h0 < w.h1 && w.w0 < w.w1);`);

const AVGPOOL_BACKWARD_WGSL = poolKernel(GEOMETRY_UNIFORMS, `${AVG_WINDOW_WGSL}\n${COVER_WGSL}`, ['dy'], ['dx'], /* wgsl */ `  let iw = i32(i % u32(p.W));
  let ih = i32((i / u32(p.W)) % u32(p.H));
  let base = (i / u32(p.H * p.W)) * u32(p.OH * p.OW);
  let rows = cover(ih, p.kh, p.sh, p.ph, 1, p.OH);
  let cols = cover(iw, p.kw, p.sw, p.pw, 1, p.OW);
  var acc = 0.0;
  for (var oh = rows.x; oh <= rows.y; oh++) {
    for (var ow = cols.x; ow <= cols.y; ow++) {
      acc += dy[base + u32(oh * p.OW + ow)] / avg_window(oh, ow).div;
    }
  }
  dx[i] = acc;`);

const ADAPTIVE_WGSL = poolKernel(ADAPTIVE_UNIFORMS, ADAPTIVE_BINS_WGSL, ['x'], ['y'], /* wgsl */ `  let ow = i % p.OW;
  let oh = (i / p.OW) % p.OH;
  let base = (i / (p.OW * p.OH)) * p.H * p.W;
  let h0 = bin_start(oh, p.H, p.OH); let h1 = bin_end(oh, p.H, p.OH);
  let w0 = bin_start(ow, p.W, p.OW); let w1 = bin_end(ow, p.W, p.OW);
  var s = 0.0;
  for (var ih = h0; ih < h1; ih++) {
    for (var iw = w0; iw < w1; iw++) { s += x[base + ih * p.W + iw]; }
  }
  y[i] = s / f32((h1 - h0) * (w1 - w0));`);

const ADAPTIVE_BACKWARD_WGSL = poolKernel(ADAPTIVE_UNIFORMS, ADAPTIVE_BINS_WGSL, ['dy'], ['dx'], /* wgsl */ `  let iw = i % p.W;
  let ih = (i / p.W) % p.H;
  let base = (i / (p.W * p.H)) * p.OH * p.OW;
  // the bins holding ih: i ≥ ⌊ih·OH/H⌋ and i < ⌈(ih+1)·OH/H⌉
  let r0 = (ih * p.OH) / p.H; let r1 = ((ih + 1u) * p.OH + p.H - 1u) / p.H;
  let c0 = (iw * p.OW) / p.W; let c1 = ((iw + 1u) * p.OW + p.W - 1u) / p.W;
  var acc = 0.0;
  for (var oh = r0; oh < r1; oh++) {
    let rows = bin_end(oh, p.H, p.OH) - bin_start(oh, p.H, p.OH);
    for (var ow = c0; ow < c1; ow++) {
      let cols = bin_end(ow, p.W, p.OW) - bin_start(ow, p.W, p.OW);
      acc += dy[base + oh * p.OW + ow] / f32(rows * cols);
    }
  }
  dx[i] = acc;`);
