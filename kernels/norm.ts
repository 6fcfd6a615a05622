// Batch normalisation over x [N, C, ...] per channel (Ioffe & Szegedy, ICML 2015) with PyTorch's
// semantics: training normalises with the batch mean and biased variance and moves the running
// statistics (unbiased variance) by `momentum`, in place on the device; eval uses the running ones.
// Per-channel statistics and gradient sums are two-stage workgroup tree reductions: stage 1 gives
// one partial per (channel, chunk of PER x 256 elements), stage 2 merges a channel's chunks in one
// workgroup. Statistics are Welford partials merged by Chan's formula, so the variance never
// suffers the cancellation of E[x²] - E[x]², and every sum is pairwise (error ~ log M, not M).
// Partials are stored chunk-major, so an input larger than one binding runs stage 1 on chunks of
// images and stage 2 merges all their partials: the statistics stay those of the whole batch.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1, type Bound } from './runtime.js';
import { workgroupKernel, linearKernel, memoCode } from './wgsl.js';
import { byRows, overBinding, rowsPerChunk, sliceRows } from './split.js';
import { Tensor, shapeSize } from './tensor.js';

const WG = 256;
/** Elements one invocation folds sequentially in stage 1 before the tree takes over. */
const PER = 16;

interface Layout {
  N: number;
  C: number;
  /** spatial size: the product of the dims after C */
  S: number;
  /** elements per channel: N * S */
  M: number;
  chunks: number;
}

function layoutOf(op: string, x: Tensor): Layout {
  check(x.rank >= 2, op, `expects an input [N, C, ...] of rank >= 2, got ${fmtShape(x.shape)}`);
  check(x.dtype === 'f32', op, `needs an f32 input, got ${x.dtype} ${fmtShape(x.shape)}`);
  const [N, C] = x.shape;
  const S = shapeSize(x.shape.slice(2));
  const M = N * S;
  return { N, C, S, M, chunks: Math.max(1, Math.ceil(M / (PER * WG))) };
}

/** Checks that `t` (when given) is an f32 vector of one value per channel of x. */
export function checkChannelVector(op: string, x: Tensor, name: string, t: Tensor | null): void {
  if (!t) return;
  check(t.rank === 1 && t.shape[0] === x.shape[1] && t.dtype === 'f32', op,
    () => `${name} must be an f32 vector of ${x.shape[1]} values (one per channel of input ${fmtShape(x.shape)}), got ${t.dtype} ${fmtShape(t.shape)}`);
}

// ---------------------------------------------------------------- WGSL

// Chan et al. (1979): merge of two (count, mean, M2) partials; M2 = Σ (x - mean)²
const CHAN_WGSL = /* wgsl */ `
fn chan(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
  if (b.x == 0.0) { return a; }
  let n = a.x + b.x;
  let d = b.y - a.y;
  return vec3<f32>(n, a.y + d * (b.x / n), a.z + b.z + d * d * (a.x * b.x / n));
}`;

const TREE = (combine: (a: string, b: string) => string): string => /* wgsl */ `
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { sh[li] = ${combine('sh[li]', 'sh[li + s]')}; }
    workgroupBarrier();
  }`;

const vecT = (vec4: boolean): string => (vec4 ? 'vec4<f32>' : 'f32');
const SH3 = `var<workgroup> sh: array<vec3<f32>, ${WG}>;`;
const SH2 = `var<workgroup> sh: array<vec2<f32>, ${WG}>;`;

/**
 * Stage 1 of the statistics: Welford partials (count, mean, M2) per (channel, chunk). `vec4` (S a
 * multiple of 4; S and M then count vec4s): each load is 4 values of one channel, whose own
 * (4, mean, M2) is exact and merged by Chan's formula: a quarter of the loads and divisions.
 */
const statsPartialCode = memoCode((vec4: boolean) => workgroupKernel({
  preamble: `${CHAN_WGSL}\n${SH3}`,
  uniforms: { C: 'u32', S: 'u32', M: 'u32', chunks: 'u32' }, read: { x: vecT(vec4) }, write: { part: 'f32' }, wg: WG,
}, /* wgsl */ `  if (w >= p.C * p.chunks) { return; }
  let c = w % p.C;
  let k = w / p.C;
  var acc = vec3<f32>(0.0);
  for (var j = 0u; j < ${PER}u; j++) {
    let m = (k * ${PER}u + j) * ${WG}u + li;
    if (m >= p.M) { break; }
    let v = x[(m / p.S * p.C + c) * p.S + m % p.S];
    ${vec4 ? `let mu4 = (v.x + v.y + v.z + v.w) * 0.25;
    let d = v - mu4;
    acc = chan(acc, vec3<f32>(4.0, mu4, dot(d, d)));` : 'acc = chan(acc, vec3<f32>(1.0, v, 0.0));'}
  }
  sh[li] = acc;
  ${TREE((a, b) => `chan(${a}, ${b})`)}
  if (li == 0u) {
    let o = w * 3u;
    part[o] = sh[0].x; part[o + 1u] = sh[0].y; part[o + 2u] = sh[0].z;
  }`));

/** Stage 2: merges a channel's partials into its mean and biased variance, and moves the running stats. */
const statsFinalWGSL = (running: boolean): string => workgroupKernel({
  preamble: `${CHAN_WGSL}\n${SH3}`,
  uniforms: { C: 'u32', chunks: 'u32', momentum: 'f32' },
  read: { part: 'f32' },
  write: { mean: 'f32', variance: 'f32', ...(running ? { runMean: 'f32', runVar: 'f32' } : {}) },
  wg: WG, bound: 'C',
}, /* wgsl */ `  let c = w;
  var acc = vec3<f32>(0.0);
  for (var k = li; k < p.chunks; k += ${WG}u) {
    let o = (k * p.C + c) * 3u;
    acc = chan(acc, vec3<f32>(part[o], part[o + 1u], part[o + 2u]));
  }
  sh[li] = acc;
  ${TREE((a, b) => `chan(${a}, ${b})`)}
  if (li == 0u) {
    let t = sh[0];
    mean[c] = t.y;
    variance[c] = t.z / t.x;
    ${running ? `// running update with the unbiased variance, as PyTorch
    runMean[c] = (1.0 - p.momentum) * runMean[c] + p.momentum * t.y;
    runVar[c] = (1.0 - p.momentum) * runVar[c] + p.momentum * t.z / (t.x - 1.0);` : ''}
  }`);
const STATS_FINAL_WGSL = statsFinalWGSL(false);
const STATS_FINAL_RUNNING_WGSL = statsFinalWGSL(true);

/** Stage 1 of the gradient sums: (Σ dy, Σ dy·x̂) partials per (channel, chunk); `vec4` as in statsPartialCode. */
const gradSumsPartialCode = memoCode((vec4: boolean) => workgroupKernel({
  preamble: SH2,
  uniforms: { C: 'u32', S: 'u32', M: 'u32', chunks: 'u32', eps: 'f32' },
  read: { dy: vecT(vec4), x: vecT(vec4), mean: 'f32', variance: 'f32' }, write: { part: 'f32' }, wg: WG,
}, /* wgsl */ `  if (w >= p.C * p.chunks) { return; }
  let c = w % p.C;
  let k = w / p.C;
  let mu = mean[c];
  let r = inverseSqrt(variance[c] + p.eps);
  var acc = vec2<f32>(0.0);
  for (var j = 0u; j < ${PER}u; j++) {
    let m = (k * ${PER}u + j) * ${WG}u + li;
    if (m >= p.M) { break; }
    let i = (m / p.S * p.C + c) * p.S + m % p.S;
    let g = dy[i];
    ${vec4 ? 'acc += vec2<f32>(g.x + g.y + g.z + g.w, dot(g, (x[i] - mu) * r));' : 'acc += vec2<f32>(g, g * (x[i] - mu) * r);'}
  }
  sh[li] = acc;
  ${TREE((a, b) => `${a} + ${b}`)}
  if (li == 0u) { part[w * 2u] = sh[0].x; part[w * 2u + 1u] = sh[0].y; }`));

/** Stage 2: a channel's partials summed into dbias and dweight. */
const GRADSUMS_FINAL_WGSL = workgroupKernel({
  preamble: SH2,
  uniforms: { C: 'u32', chunks: 'u32' }, read: { part: 'f32' }, write: { dbias: 'f32', dweight: 'f32' }, wg: WG, bound: 'C',
}, /* wgsl */ `  var acc = vec2<f32>(0.0);
  for (var k = li; k < p.chunks; k += ${WG}u) {
    let o = (k * p.C + w) * 2u;
    acc += vec2<f32>(part[o], part[o + 1u]);
  }
  sh[li] = acc;
  ${TREE((a, b) => `${a} + ${b}`)}
  if (li == 0u) { dbias[w] = sh[0].x; dweight[w] = sh[0].y; }`);

/** The per-channel walk of the stage-1 kernels in vec4 units when S is a multiple of 4. */
function vec4Layout(L: Layout): { vec4: boolean; S: number; M: number; chunks: number } {
  if (L.S % 4 !== 0) return { vec4: false, S: L.S, M: L.M, chunks: L.chunks };
  const M = L.M / 4;
  return { vec4: true, S: L.S / 4, M, chunks: Math.max(1, Math.ceil(M / (PER * WG))) };
}

// The two elementwise passes read x (and dy) as vec4 when the spatial size S is a multiple of 4:
// the 4 values share one channel, so one invocation does a quarter of the loads and index work
// (n, S then count vec4s). Every expression below is componentwise, so the code is the same.

/** The normalisation, with or without the per-channel weight and bias. */
const applyCode = memoCode((weight: boolean, bias: boolean, vec4: boolean) => linearKernel({
  uniforms: { n: 'u32', C: 'u32', S: 'u32', eps: 'f32' },
  read: { x: vecT(vec4), mean: 'f32', variance: 'f32', ...(weight ? { weight: 'f32' } : {}), ...(bias ? { bias: 'f32' } : {}) },
  write: { y: vecT(vec4) }, wg: WG, bound: 'n',
}, `  let c = (i / p.S) % p.C;
  y[i] = (x[i] - mean[c]) * (inverseSqrt(variance[c] + p.eps)${weight ? ' * weight[c]' : ''})${bias ? ' + bias[c]' : ''};`));

/** dx in training (with the gradient sums) or eval mode, with or without the weight. */
const inputGradCode = memoCode((weight: boolean, training: boolean, vec4: boolean) => linearKernel({
  uniforms: { n: 'u32', C: 'u32', S: 'u32', eps: 'f32', invM: 'f32' },
  read: { dy: vecT(vec4), x: vecT(vec4), mean: 'f32', variance: 'f32', ...(weight ? { weight: 'f32' } : {}), ...(training ? { sumDy: 'f32', sumDyXhat: 'f32' } : {}) },
  write: { dx: vecT(vec4) }, wg: WG, bound: 'n',
}, `  let c = (i / p.S) % p.C;
  let r = inverseSqrt(variance[c] + p.eps);
  ${training
    ? `let xhat = (x[i] - mean[c]) * r;
  dx[i] = ${weight ? 'weight[c]' : '1.0'} * r * (dy[i] - sumDy[c] * p.invM - xhat * sumDyXhat[c] * p.invM);`
    : `dx[i] = ${weight ? 'weight[c]' : '1.0'} * r * dy[i];`}`));

// ---------------------------------------------------------------- statistics

export interface RunningStats {
  mean: Tensor;
  var: Tensor;
  momentum: number;
}

/**
 * Per-channel batch mean and biased variance of x [N, C, ...] (each [C]). With `running`, also
 * moves running mean/var in place: r ← (1 − momentum)·r + momentum·batch (unbiased variance).
 */
export function batchNormStats(x: Tensor, running?: RunningStats): { mean: Tensor; var: Tensor } {
  const op = 'batchNormStats';
  const L = layoutOf(op, x);
  checkInputs(op, running ? [x, running.mean, running.var] : [x]);
  check(L.M > 0, op, `input ${fmtShape(x.shape)} has no elements per channel`);
  if (running) {
    checkChannelVector(op, x, 'running mean', running.mean);
    checkChannelVector(op, x, 'running var', running.var);
    check(L.M > 1, op, `the unbiased running variance needs more than 1 value per channel, got input ${fmtShape(x.shape)}`);
  }
  const mean = Tensor.empty([L.C], 'f32', x.device, op);
  const variance = Tensor.empty([L.C], 'f32', x.device, op);
  if (x.device === 'cpu') {
    const xs = x.cpu, mu = mean.cpu, v = variance.cpu;
    for (let c = 0; c < L.C; c++) {
      let s = 0;
      forChannel(L, c, (i) => (s += xs[i]));
      mu[c] = s / L.M;
      let q = 0;
      forChannel(L, c, (i) => (q += (xs[i] - mu[c]) ** 2));
      v[c] = q / L.M;
      if (running) {
        const m = running.momentum;
        running.mean.cpu[c] = (1 - m) * running.mean.cpu[c] + m * mu[c];
        running.var.cpu[c] = (1 - m) * running.var.cpu[c] + (m * q) / (L.M - 1);
      }
    }
    return { mean, var: variance };
  }
  const rt = runtime();
  const { part, chunks } = partials(op, [x], 3, ([xc]) => {
    const V = vec4Layout(layoutOf(op, xc));
    const part = Tensor.empty([L.C * V.chunks * 3], 'f32', x.device, op);
    const k1 = rt.kernel('norm.batchnorm.stats', statsPartialCode(V.vec4));
    rt.dispatch(k1, { x: xc.binding(), part: part.binding() }, { C: L.C, S: V.S, M: V.M, chunks: V.chunks }, grid1(L.C * V.chunks));
    return part;
  });
  const k2 = rt.kernel('norm.batchnorm.stats.final', running ? STATS_FINAL_RUNNING_WGSL : STATS_FINAL_WGSL);
  const bufs: Record<string, Bound> = { part: part.binding(), mean: mean.binding(), variance: variance.binding() };
  if (running) Object.assign(bufs, { runMean: running.mean.binding(), runVar: running.var.binding() });
  rt.dispatch(k2, bufs, { C: L.C, chunks, momentum: running?.momentum ?? 0 }, grid1(L.C));
  part.dispose();
  return { mean, var: variance };
}

/**
 * Stage-1 partials, chunk-major ([chunks, C, width]), from `stage1` on the whole batch or, when the
 * tensors exceed one binding, on chunks of images whose partials are concatenated: stage 2 then
 * merges them all as one list, so the statistics are those of the whole batch.
 */
function partials(op: string, ts: Tensor[], width: number, stage1: (chunks: Tensor[]) => Tensor): { part: Tensor; chunks: number } {
  const [N, C] = ts[0].shape;
  if (!overBinding(...ts)) {
    const part = stage1(ts);
    return { part, chunks: part.size / (C * width) };
  }
  const per = rowsPerChunk(op, N, (ts[0].size / N) * 4, () => ts.map((t) => fmtShape(t.shape)).join(', '));
  const parts: Tensor[] = [];
  for (let a = 0; a < N; a += per) {
    const slices = ts.map((t) => sliceRows(t, a, Math.min(N, a + per)));
    parts.push(stage1(slices));
    for (const t of slices) t.dispose();
  }
  const total = parts.reduce((n, p) => n + p.size, 0);
  check(total * 4 <= runtime().bindingLimit, op, () => `${total * 4} bytes of partial sums for input ${fmtShape(ts[0].shape)} exceed the binding limit`);
  const part = Tensor.empty([total], 'f32', ts[0].device, op);
  let at = 0;
  for (const p of parts) {
    runtime().copy(p.buffer, 0, part.buffer, at * 4, p.size * 4);
    at += p.size;
    p.dispose();
  }
  return { part, chunks: total / (C * width) };
}

/** Calls f with the flat index of every element of channel c. */
function forChannel(L: Layout, c: number, f: (i: number) => void): void {
  for (let n = 0; n < L.N; n++) {
    const base = (n * L.C + c) * L.S;
    for (let s = 0; s < L.S; s++) f(base + s);
  }
}

// ---------------------------------------------------------------- normalisation

/** y = (x − mean[c]) / √(var[c] + eps) · weight[c] + bias[c]; weight/bias null = 1/0 (Ioffe & Szegedy 2015). */
export function batchNormApply(x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  const op = 'batchNorm';
  const L = layoutOf(op, x);
  checkInputs(op, [x, mean, variance, ...(weight ? [weight] : []), ...(bias ? [bias] : [])]);
  checkChannelVector(op, x, 'mean', mean);
  checkChannelVector(op, x, 'var', variance);
  checkChannelVector(op, x, 'weight', weight);
  checkChannelVector(op, x, 'bias', bias);
  const out = Tensor.empty(x.shape, 'f32', x.device, op);
  if (out.size === 0) return out;
  if (x.device === 'cpu') {
    const xs = x.cpu, o = out.cpu, mu = mean.cpu, v = variance.cpu;
    for (let c = 0; c < L.C; c++) {
      const r = 1 / Math.sqrt(v[c] + eps);
      const w = weight ? weight.cpu[c] : 1, b = bias ? bias.cpu[c] : 0;
      forChannel(L, c, (i) => (o[i] = (xs[i] - mu[c]) * r * w + b));
    }
    return out;
  }
  if (overBinding(x)) {
    // in chunks of images (each chunk's channel index (i / S) % C stays right)
    out.dispose();
    return byRows(op, [x], L.C * L.S * 4, ([xc]) => [batchNormApply(xc, mean, variance, weight, bias, eps)])[0];
  }
  const vec4 = L.S % 4 === 0;
  const k = runtime().kernel('norm.batchnorm', applyCode(Boolean(weight), Boolean(bias), vec4));
  const bufs: Record<string, Bound> = { x: x.binding(), mean: mean.binding(), variance: variance.binding(), y: out.binding() };
  if (weight) bufs.weight = weight.binding();
  if (bias) bufs.bias = bias.binding();
  const n = vec4 ? x.size / 4 : x.size;
  runtime().dispatch(k, bufs, { n, C: L.C, S: vec4 ? L.S / 4 : L.S, eps }, grid1(Math.ceil(n / WG)));
  return out;
}

// ---------------------------------------------------------------- backward

export interface BatchNormGrads {
  dx: Tensor;
  /** Σ dy·x̂ per channel (null unless asked for) */
  dweight: Tensor | null;
  /** Σ dy per channel (null unless asked for) */
  dbias: Tensor | null;
}

/**
 * Gradients of batchNormApply. `training` (mean/var are the batch statistics x was normalised
 * with): dx = γ·rstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M) per channel; otherwise (running statistics)
 * dx = γ·rstd·dy. dweight = Σ dy·x̂ and dbias = Σ dy are returned when `paramGrads` is set.
 */
export function batchNormBackward(
  g: Tensor, x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor | null, eps: number,
  opts: { training: boolean; paramGrads: boolean },
): BatchNormGrads {
  const op = 'batchNormBackward';
  const L = layoutOf(op, x);
  checkInputs(op, [g, x, mean, variance, ...(weight ? [weight] : [])]);
  check(g.shape.join() === x.shape.join(), op, () => `gradient ${fmtShape(g.shape)} does not match input ${fmtShape(x.shape)}`);
  checkChannelVector(op, x, 'mean', mean);
  checkChannelVector(op, x, 'var', variance);
  checkChannelVector(op, x, 'weight', weight);
  const sums = opts.training || opts.paramGrads;
  const dbias = sums ? Tensor.empty([L.C], 'f32', x.device, op) : null;
  const dweight = sums ? Tensor.empty([L.C], 'f32', x.device, op) : null;
  let dx = Tensor.empty(x.shape, 'f32', x.device, op);
  if (x.device === 'cpu') {
    const gs = g.cpu, xs = x.cpu, o = dx.cpu;
    for (let c = 0; c < L.C; c++) {
      const r = 1 / Math.sqrt(variance.cpu[c] + eps), mu = mean.cpu[c], w = weight ? weight.cpu[c] : 1;
      let sdy = 0, sdyx = 0;
      forChannel(L, c, (i) => {
        sdy += gs[i];
        sdyx += gs[i] * (xs[i] - mu) * r;
      });
      if (dbias && dweight) {
        dbias.cpu[c] = sdy;
        dweight.cpu[c] = sdyx;
      }
      forChannel(L, c, (i) => {
        o[i] = opts.training ? w * r * (gs[i] - sdy / L.M - ((xs[i] - mu) * r * sdyx) / L.M) : w * r * gs[i];
      });
    }
  } else {
    if (dbias && dweight && L.M > 0) gradSums(L, g, x, mean, variance, eps, dbias, dweight);
    else if (dbias && dweight) {
      runtime().clear(dbias.buffer, L.C * 4);
      runtime().clear(dweight.buffer, L.C * 4);
    }
    const sumsOrNull = opts.training ? { dbias: dbias!, dweight: dweight! } : null;
    if (dx.size > 0 && overBinding(x)) {
      dx.dispose();
      // in chunks of images; 1/M stays the whole batch's
      dx = byRows(op, [g, x], L.C * L.S * 4, ([gc, xc]) => {
        const d = Tensor.empty(xc.shape, 'f32', x.device, op);
        inputGrad(L.S, L.C, 1 / L.M, gc, xc, mean, variance, weight, eps, sumsOrNull, d);
        return [d];
      })[0];
    } else if (dx.size > 0) inputGrad(L.S, L.C, 1 / L.M, g, x, mean, variance, weight, eps, sumsOrNull, dx);
  }
  if (opts.paramGrads) return { dx, dweight, dbias };
  dweight?.dispose();
  dbias?.dispose();
  return { dx, dweight: null, dbias: null };
}

/** Σ dy and Σ dy·x̂ per channel, into dbias and dweight. */
function gradSums(L: Layout, g: Tensor, x: Tensor, mean: Tensor, variance: Tensor, eps: number, dbias: Tensor, dweight: Tensor): void {
  const rt = runtime();
  const op = 'batchNormBackward';
  const { part, chunks } = partials(op, [g, x], 2, ([gc, xc]) => {
    const V = vec4Layout(layoutOf(op, xc));
    const part = Tensor.empty([L.C * V.chunks * 2], 'f32', x.device, op);
    const k1 = rt.kernel('norm.batchnorm.backward.sums', gradSumsPartialCode(V.vec4));
    rt.dispatch(k1, { dy: gc.binding(), x: xc.binding(), mean: mean.binding(), variance: variance.binding(), part: part.binding() }, { C: L.C, S: V.S, M: V.M, chunks: V.chunks, eps }, grid1(L.C * V.chunks));
    return part;
  });
  const k2 = rt.kernel('norm.batchnorm.backward.sums.final', GRADSUMS_FINAL_WGSL);
  rt.dispatch(k2, { part: part.binding(), dbias: dbias.binding(), dweight: dweight.binding() }, { C: L.C, chunks }, grid1(L.C));
  part.dispose();
}

/** dx of x [N, C, S...] (S values per channel and image); invM is 1 / the whole batch's count per channel. */
function inputGrad(
  S: number, C: number, invM: number, g: Tensor, x: Tensor, mean: Tensor, variance: Tensor, weight: Tensor | null, eps: number,
  sums: { dbias: Tensor; dweight: Tensor } | null, dx: Tensor,
): void {
  const training = Boolean(sums);
  const vec4 = S % 4 === 0;
  const k = runtime().kernel('norm.batchnorm.backward', inputGradCode(Boolean(weight), training, vec4));
  const bufs: Record<string, Bound> = { dy: g.binding(), x: x.binding(), mean: mean.binding(), variance: variance.binding(), dx: dx.binding() };
  if (weight) bufs.weight = weight.binding();
  if (sums) Object.assign(bufs, { sumDy: sums.dbias.binding(), sumDyXhat: sums.dweight.binding() });
  const n = vec4 ? x.size / 4 : x.size;
  runtime().dispatch(k, bufs, { n, C, S: vec4 ? S / 4 : S, eps, invM }, grid1(Math.ceil(n / WG)));
}
