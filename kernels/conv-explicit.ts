// 2-D convolution by explicit im2col for CPU adapters: the input unfolded once into columns by a
// gather kernel, the shared matmul kernels on them, and col2im gathering the input gradient back.
// kernels/conv.ts chooses this path (explicitChunk) and owns the geometry and the implicit GEMMs.

import { matmul } from './matmul.js';
import { addPartial, binary } from './elementwise.js';
import { runtime } from './runtime.js';
import { device } from './device.js';
import { sum } from './reduce.js';
import { sliceRows, writeRows } from './split.js';
import { subgroupGemmSize } from './gemm-subgroup.js';
import { kernelHeader } from './wgsl.js';
import { Tensor, type Shape } from './tensor.js';
import { DIVMOD_WGSL, isPointwise, outShapeOf, recip, type ConvForward, type ConvGeometry, type ConvTuning } from './conv.js';

// On CPU adapters (lavapipe, SwiftShader) a pipeline compiles in seconds, longer the more im2col
// arithmetic each invocation inlines, which holds the implicit GEMMs of kernels/conv.ts to 4x4 outputs per
// invocation. There a convolution whose unfolded input fits EXPLICIT_BYTES unfolds it once with a
// plain gather kernel, col [N, G, Cig·KH·KW, OH·OW], and runs the shared matmul kernels with their
// 8x8 tiles; the forward's col is kept for wgrad (conv2dKeepColumns). Measured on lavapipe, a
// ResNet-8 training step (32x32, batch 64) spends ~1.5x less GPU time in convolution this way.
// A pointwise convolution (1x1, stride 1) needs no unfolding: its columns are x, so it is the
// batched matmul alone: on lavapipe the subgroup GEMM rather than the pointwise implicit GEMM.
// A batch whose columns exceed EXPLICIT_BYTES runs in chunks of images that fit (the columns are
// then not kept): before chunking, ResNet-8 at batch 128 fell back to the implicit GEMMs and took
// 3.4x the time of batch 64.
//   forward  y[n, g]  = W_g · col[n, g]                 (one batched matmul, W broadcast over n)
//   wgrad    dW_g     = Σ_n dY[n, g] · col[n, g]ᵀ      (batched matmul, then a fixed-order sum over n)
//   dgrad    dcol[n, g] = W_gᵀ · dY[n, g], then col2im: each dX element gathers its taps (no atomics)

/** Largest unfolded input (and wgrad partial sum) the explicit path materialises at once. */
const EXPLICIT_BYTES = 64 * 2 ** 20;
const IM2COL_WG = 256;
const IM2COL_RUN = 8;

const IM2COL_UNIFORMS: Record<string, string> = Object.fromEntries([
  ...'H W OH OW ohw hw x0 Cig Kg KH KW KHW SH SW'.split(' ').map((n) => [n, 'u32']),
  ...'PH PW DH DW'.split(' ').map((n) => [n, 'i32']),
  ...'invOW invW invSH invSW'.split(' ').map((n) => [n, 'f32']),
]);

/**
 * Images per chunk of the explicit path (0: the implicit GEMMs instead): as many as keep the
 * columns and wgrad's per-image partial sums within EXPLICIT_BYTES and the grids within the
 * workgroup limit, balanced over the chunks; tuning.explicitChunk caps it (tests).
 */
export function explicitChunk(g: ConvGeometry, tuning: ConvTuning): number {
  if (tuning.strategy === 'implicit' || g.N === 0) return 0;
  // pointwise convolutions gain from this path only through the subgroup GEMM (lavapipe); elsewhere
  // (SwiftShader) they keep the pointwise implicit GEMM, whose pipelines compile faster there
  if (!tuning.strategy && (!device().info.isFallbackAdapter || (isPointwise(g) && !subgroupGemmSize()))) return 0;
  const imageBytes = 4 * Math.max(g.C * g.kernel[0] * g.kernel[1] * g.OH * g.OW, g.Co * g.Cig * g.kernel[0] * g.kernel[1]);
  const maxGroups = device().limits.maxComputeWorkgroupsPerDimension;
  const byBytes = Math.floor(Math.min(EXPLICIT_BYTES, device().limits.maxStorageBufferBindingSize) / imageBytes);
  const most = Math.min(g.N, byBytes, Math.floor(maxGroups / Math.max(g.groups, g.C)), tuning.explicitChunk ?? Infinity);
  if (!tuning.strategy && (most < 1 || g.Cig * g.kernel[0] * g.kernel[1] > maxGroups)) return 0;
  const per = Math.max(1, most);
  return Math.ceil(g.N / Math.ceil(g.N / per));
}

/** Calls fn(a, n) for the chunks [a, a + n) of `per` images (the last may be smaller), flushing after each so the pool reuses their buffers (and frees them before the next op). */
function forChunks(N: number, per: number, fn: (a: number, n: number) => void): void {
  for (let a = 0; a < N; a += per) {
    fn(a, Math.min(per, N - a));
    runtime().flush();
  }
}

/** The geometry uniforms, x0 the element offset of image n0 in x (and dx). */
function im2colUniforms(g: ConvGeometry, n0: number): Record<string, number> {
  const [KH, KW] = g.kernel;
  return {
    H: g.H, W: g.W, OH: g.OH, OW: g.OW, ohw: g.OH * g.OW, hw: g.H * g.W, x0: n0 * g.C * g.H * g.W, Cig: g.Cig, Kg: g.Cig * KH * KW, KH, KW, KHW: KH * KW,
    SH: g.stride[0], SW: g.stride[1], PH: g.padding[0], PW: g.padding[1], DH: g.dilation[0], DW: g.dilation[1],
    invOW: recip(g.OW), invW: recip(g.W), invSH: recip(g.stride[0]), invSW: recip(g.stride[1]),
  };
}

// Integer division is scalarised on CPU adapters, so the grids carry the row k and the image, and
// the remaining divisions use cv_divmod's f32 reciprocals.

/** im2col and col2im: one f32 array read, one written, the geometry uniforms, `body` as main's. */
const unfoldKernel = (name: string, src: string, dst: string, body: string) =>
  runtime().kernel(`conv-explicit.${name}`, `${kernelHeader({ preamble: DIVMOD_WGSL, uniforms: IM2COL_UNIFORMS, read: { [src]: 'f32' }, write: { [dst]: 'f32' }, wg: IM2COL_WG })}
${body}
}`);

/**
 * col[n, g, (ci, r, c), (oh, ow)] = x[n0 + n, g·Cig + ci, oh·s − p + r·d, ow·s − p + c·d] for the
 * `count` images from n0, 0 in the padding. A pointwise convolution's columns are x itself: a
 * view, or a copy of the chunk's rows.
 */
function im2col(x: Tensor, g: ConvGeometry, n0 = 0, count = g.N): Tensor {
  const Kg = g.Cig * g.kernel[0] * g.kernel[1];
  if (isPointwise(g)) {
    const rows = count === g.N ? x : sliceRows(x, n0, n0 + count);
    const view = rows.reshape([count, g.groups, Kg, g.OH * g.OW]);
    if (rows !== x) rows.dispose();
    return view;
  }
  const col = Tensor.empty([count, g.groups, Kg, g.OH * g.OW], 'f32', x.device, 'conv2d');
  // grid: x = runs of output pixels (oh, ow), y = row k = (ci, r, c), z = image n·G + g
  const k = unfoldKernel('im2col', 'x', 'col', /* wgsl */ `
  // ${IM2COL_RUN} consecutive output pixels per invocation: one division for the run
  let o0 = (wid.x * ${IM2COL_WG}u + li) * ${IM2COL_RUN}u;
  if (o0 >= p.ohw) { return; }
  let k = wid.y; let img = wid.z; // x's plane of channel g·Cig + ci is img·Cig + ci
  let ci = k / p.KHW; let rc = k % p.KHW;
  let start = cv_divmod(o0, p.OW, p.invOW);
  var oh = start.x; var ow = start.y;
  let plane = (img * p.Cig + ci) * p.H;
  let r = i32(rc / p.KW) * p.DH - p.PH; let c = i32(rc % p.KW) * p.DW - p.PW;
  let out = (img * p.Kg + k) * p.ohw;
  for (var o = o0; o < min(o0 + ${IM2COL_RUN}u, p.ohw); o++) {
    let ih = i32(oh * p.SH) + r; let iw = i32(ow * p.SW) + c;
    var v = 0.0;
    if (ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W)) { v = x[p.x0 + (plane + u32(ih)) * p.W + u32(iw)]; }
    col[out + o] = v;
    ow++;
    if (ow == p.OW) { ow = 0u; oh++; }
  }`);
  runtime().dispatch(k, { x: x.binding(), col: col.binding() }, im2colUniforms(g, n0), [Math.ceil((g.OH * g.OW) / (IM2COL_WG * IM2COL_RUN)), Kg, count * g.groups]);
  return col;
}

/** dx[n0 + n, g·Cig + ci, h, w] = Σ over the taps (r, c) that reach (h, w) of dcol[n, g, (ci, r, c), (oh, ow)], for dcol's images (pointwise: a copy). */
function col2im(dcol: Tensor, g: ConvGeometry, dx: Tensor, n0 = 0): void {
  if (isPointwise(g)) {
    writeRows(dx, n0, dcol);
    return;
  }
  // grid: x = input pixels (h, w), y = plane (n·G + g)·Cig + ci
  const k = unfoldKernel('col2im', 'dcol', 'dx', /* wgsl */ `
  let pix = wid.x * ${IM2COL_WG}u + li;
  if (pix >= p.hw) { return; }
  let plane = wid.y;
  let hw = cv_divmod(pix, p.W, p.invW);
  let base = ((plane / p.Cig) * p.Kg + (plane % p.Cig) * p.KHW) * p.ohw;
  var v = 0.0;
  for (var r = 0u; r < p.KH; r++) {
    // tap r reaches row h from dY row oh when h + p − r·d = oh·s
    let th = i32(hw.x) + p.PH - i32(r) * p.DH;
    if (th < 0) { break; }
    let oh = cv_divmod(u32(th), p.SH, p.invSH);
    if (oh.y != 0u || oh.x >= p.OH) { continue; }
    for (var c = 0u; c < p.KW; c++) {
      let tw = i32(hw.y) + p.PW - i32(c) * p.DW;
      if (tw < 0) { break; }
      let ow = cv_divmod(u32(tw), p.SW, p.invSW);
      if (ow.y != 0u || ow.x >= p.OW) { continue; }
      v += dcol[base + (r * p.KW + c) * p.ohw + oh.x * p.OW + ow.x];
    }
  }
  dx[p.x0 + plane * p.hw + pix] = v;`);
  runtime().dispatch(k, { dcol: dcol.binding(), dx: dx.binding() }, im2colUniforms(g, n0), [Math.ceil((g.H * g.W) / IM2COL_WG), dcol.shape[0] * g.C]);
}

/** The weight as [G, Cog, Cig·KH·KW] (a view). */
const groupedWeight = (w: Tensor, g: ConvGeometry): Tensor => w.reshape([g.groups, g.Cog, g.Cig * g.kernel[0] * g.kernel[1]]);

/** The forward in chunks of `per` images (explicitChunk); the columns are kept only when one chunk holds the batch. */
export function explicitForward(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, keepColumns: boolean, per: number): ConvForward {
  const wg = groupedWeight(w, g);
  let y: Tensor, col: Tensor | null = null;
  if (per >= g.N) {
    col = im2col(x, g);
    y = matmul(wg, col); // [N, G, Cog, OH·OW]
    if (!keepColumns) col.dispose();
  } else {
    y = Tensor.empty([g.N, g.groups, g.Cog, g.OH * g.OW], 'f32', x.device, 'conv2d');
    forChunks(g.N, per, (a, n) => {
      const c = im2col(x, g, a, n);
      const yc = matmul(wg, c);
      writeRows(y, a, yc);
      c.dispose();
      yc.dispose();
    });
  }
  wg.dispose();
  let out = y;
  if (bias) {
    // the bias epilogue on views of the matmul output and the bias, freed here (a view holds its
    // source's buffer)
    const yv = y.reshape([g.N, g.Co, g.OH * g.OW]), bv = bias.reshape([g.Co, 1]);
    out = binary('add', yv, bv);
    for (const t of [yv, bv, y]) t.dispose();
  }
  const shaped = out.reshape(outShapeOf(g));
  out.dispose();
  return { y: shaped, columns: keepColumns ? col : null };
}

/** dy's images [a, a + n) as [n, G, Cog, OH·OW] (a view when they are all of dy). */
function dyImages(dy: Tensor, g: ConvGeometry, a: number, n: number): Tensor {
  const rows = n === g.N ? dy : sliceRows(dy, a, a + n);
  const view = rows.reshape([n, g.groups, g.Cog, g.OH * g.OW]);
  if (rows !== dy) rows.dispose();
  return view;
}

export function explicitInputGrad(dy: Tensor, w: Tensor, g: ConvGeometry, dx: Tensor, per: number): void {
  const wg = groupedWeight(w, g);
  forChunks(g.N, per, (a, n) => {
    const dyg = dyImages(dy, g, a, n);
    const dcol = matmul(wg, dyg, { transA: true }); // [n, G, Kg, OH·OW]
    dyg.dispose();
    col2im(dcol, g, dx, a);
    dcol.dispose();
  });
  wg.dispose();
}

/** wgrad in chunks of `per` images, or from the forward's `columns` (the whole batch: per = N). */
export function explicitWeightGrad(dy: Tensor, x: Tensor, g: ConvGeometry, wShape: Shape, per: number, columns?: Tensor): Tensor {
  let total: Tensor | null = null;
  // chunks of images in order, each summed over its images in a fixed order: deterministic
  forChunks(g.N, per, (a, n) => {
    const col = columns ?? im2col(x, g, a, n);
    const dyg = dyImages(dy, g, a, n);
    const perImage = matmul(dyg, col, { transB: true }); // [n, G, Cog, Kg]
    if (!columns) col.dispose();
    dyg.dispose();
    const part = sum(perImage, 0);
    perImage.dispose();
    total = addPartial(total, part);
  });
  const dw = total!.reshape(wShape);
  total!.dispose();
  return dw;
}
