// The network-layer entries of the op table (autograd/table.ts): batch norm, pooling, dropout and
// bilinear upsampling, each forward (raw kernels from kernels/) beside its backward rule, then the
// public differentiable functions with PyTorch's signatures and defaults.

import { check, fmtShape } from '../kernels/errors.js';
import { batchNormApply, batchNormBackward, batchNormStats, checkChannelVector } from '../kernels/norm.js';
import {
  adaptiveAvgPool2d as adaptiveAvgPool2dRaw, adaptiveAvgPool2dBackward, avgPool2d as avgPool2dRaw, avgPool2dBackward,
  maxPool2d as maxPool2dRaw, maxPool2dBackward, poolGeometry, type AvgPool2dOptions, type MaxPool2dOptions, type Pool2dPair, type PoolGeometry,
} from '../kernels/pooling.js';
import { dropoutApply, type DropoutStream } from '../kernels/dropout.js';
import { upsampleBilinear as upsampleRaw, upsampleBilinearBackward, upsampleGeometry, type UpsampleGeometry, type UpsampleOptions } from '../kernels/upsample.js';
import { nextStream } from '../kernels/random.js';
import type { Tensor } from '../kernels/tensor.js';
import { defineOp } from './table.js';

// the option types of the functions below, so that the differentiable API is complete on its own
// (the functional options carry 'Fn': nn's layers own BatchNormOptions, MaxPool2dOptions, AvgPool2dOptions)
export type { AvgPool2dOptions as AvgPool2dFnOptions, MaxPool2dOptions as MaxPool2dFnOptions, Pool2dOptions, Pool2dPair } from '../kernels/pooling.js';
export type { UpsampleOptions } from '../kernels/upsample.js';

// ---------------------------------------------------------------- batch norm

interface BatchNormAttrs {
  hasWeight: boolean;
  hasBias: boolean;
  /** normalise with the batch statistics (training, or no running statistics) */
  batchStats: boolean;
  running: { mean: Tensor; var: Tensor } | null;
  /** update the running statistics (training only) */
  updateRunning: boolean;
  momentum: number;
  eps: number;
}

/** The batch statistics x was normalised with (training), kept by the forward for the backward. */
type BatchNormSaved = { mean?: Tensor; var?: Tensor };

const batchNormOp = defineOp<BatchNormAttrs, BatchNormSaved>('batchNorm', {
  forward: ([x, ...params], a, ctx) => {
    const weight = a.hasWeight ? params[0] : null;
    const bias = a.hasBias ? params[a.hasWeight ? 1 : 0] : null;
    const stats = a.batchStats
      ? batchNormStats(x, a.updateRunning && a.running ? { ...a.running, momentum: a.momentum } : undefined)
      : a.running!;
    const y = batchNormApply(x, stats.mean, stats.var, weight, bias, a.eps);
    // batch statistics are this op's own (save frees them at once when nothing is recorded);
    // running statistics are the module's and stay in attrs
    if (a.batchStats) ctx.save({ mean: stats.mean, var: stats.var });
    return y;
  },
  backward: (g, { inputs: [x, ...params], attrs: a, saved }) => {
    const weight = a.hasWeight ? params[0] : null;
    const stats = a.batchStats ? (saved as Required<BatchNormSaved>) : a.running!;
    const { dx, dweight, dbias } = batchNormBackward(g, x, stats.mean, stats.var, weight, a.eps, {
      training: a.batchStats,
      paramGrads: params.some((t) => t.requiresGrad),
    });
    const grads: (Tensor | null)[] = [dx];
    if (a.hasWeight) grads.push(dweight);
    else dweight?.dispose();
    if (a.hasBias) grads.push(dbias);
    else dbias?.dispose();
    return grads;
  },
}, 'nn');

export interface BatchNormFnOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * Batch norm over x [N, C, ...] per channel (Ioffe & Szegedy, ICML 2015), as torch.nn.functional.batch_norm:
 * y = (x − μ)/√(σ² + eps)·weight + bias. Training (or no running statistics) uses the batch
 * mean and biased variance; training also moves runningMean/runningVar in place:
 * r ← (1 − momentum)·r + momentum·stat, with the unbiased variance. Eval uses the running statistics.
 */
export function batchNorm(
  x: Tensor, weight: Tensor | null, bias: Tensor | null, runningMean: Tensor | null, runningVar: Tensor | null,
  { training, momentum = 0.1, eps = 1e-5 }: BatchNormFnOptions,
): Tensor {
  const op = 'batchNorm';
  check(x.rank >= 2, op, `expects an input [N, C, ...], got ${fmtShape(x.shape)}`);
  check((runningMean === null) === (runningVar === null), op, 'give both running mean and running var, or neither');
  for (const [name, t] of [['weight', weight], ['bias', bias], ['running mean', runningMean], ['running var', runningVar]] as const) checkChannelVector(op, x, name, t);
  const batchStats = training || !runningMean;
  if (training) {
    const perChannel = x.size / Math.max(x.shape[1], 1);
    check(perChannel > 1, op, `expected more than 1 value per channel when training, got input ${fmtShape(x.shape)}`);
  }
  const params = [weight, bias].filter((t): t is Tensor => t !== null);
  return batchNormOp([x, ...params], {
    hasWeight: Boolean(weight),
    hasBias: Boolean(bias),
    batchStats,
    running: runningMean && runningVar ? { mean: runningMean, var: runningVar } : null,
    updateRunning: training,
    momentum,
    eps,
  });
}

/** batchNorm for an input [N, C, H, W] (torch.nn.BatchNorm2d). */
export function batchNorm2d(
  x: Tensor, weight: Tensor | null, bias: Tensor | null, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormFnOptions,
): Tensor {
  check(x.rank === 4, 'batchNorm2d', `expects an input [N, C, H, W], got ${fmtShape(x.shape)}`);
  return batchNorm(x, weight, bias, runningMean, runningVar, opts);
}

// ---------------------------------------------------------------- pooling

const maxPool2dOp = defineOp<{ opts: MaxPool2dOptions }, { indices: Tensor; geometry: PoolGeometry }>('maxPool2d', {
  forward: ([x], a, ctx) => {
    const { out, indices } = maxPool2dRaw(x, a.opts);
    // the argmax of each window (save frees it at once when nothing is recorded)
    ctx.save({ indices, geometry: poolGeometry('maxPool2d', x, a.opts) });
    return out;
  },
  backward: (g, { inputs: [x], saved }) => [maxPool2dBackward(g, saved.indices, x.shape, saved.geometry)],
}, 'nn');

const avgPool2dOp = defineOp<{ opts: AvgPool2dOptions }>('avgPool2d', {
  forward: ([x], a) => avgPool2dRaw(x, a.opts),
  backward: (g, { inputs: [x], attrs: a }) => [avgPool2dBackward(g, x.shape, poolGeometry('avgPool2d', x, a.opts))],
}, 'nn');

const adaptiveAvgPool2dOp = defineOp<{ size: Pool2dPair }>('adaptiveAvgPool2d', {
  forward: ([x], a) => adaptiveAvgPool2dRaw(x, a.size),
  backward: (g, { inputs: [x] }) => [adaptiveAvgPool2dBackward(g, x.shape)],
}, 'nn');

/**
 * Max pooling over [N, C, H, W] or [C, H, W] windows (torch.nn.functional.max_pool2d): padding
 * counts as −∞, ceilMode keeps a last partial window that starts inside the input or left padding.
 * The gradient goes to the first maximum of each window.
 */
export const maxPool2d = (x: Tensor, opts: MaxPool2dOptions): Tensor => maxPool2dOp([x], { opts });

/** Average pooling (torch.nn.functional.avg_pool2d); countIncludePad (default true) counts padding in the divisor. */
export const avgPool2d = (x: Tensor, opts: AvgPool2dOptions): Tensor => avgPool2dOp([x], { opts });

/** Adaptive average pooling to [oh, ow] (torch.nn.functional.adaptive_avg_pool2d): bin i = [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉). */
export const adaptiveAvgPool2d = (x: Tensor, size: Pool2dPair): Tensor => adaptiveAvgPool2dOp([x], { size });

// ---------------------------------------------------------------- dropout

const dropoutOp = defineOp<{ p: number; rng: DropoutStream }>('dropout', {
  forward: ([x], a) => dropoutApply(x, a.p, a.rng),
  // y = x·m/(1 − p) is linear in x with the same mask for the gradient: dx = g·m/(1 − p)
  backward: (g, { attrs: a }) => [dropoutApply(g, a.p, a.rng)],
}, 'nn');

/**
 * Inverted dropout (Srivastava et al., JMLR 2014): zeroes each element with probability p and
 * scales the rest by 1/(1 − p). With a seed the mask is a pure function of the seed; without, it
 * takes the next stream of the global generator (manualSeed). Eval or p = 0 returns x itself.
 */
export function dropout(x: Tensor, p: number, { training, seed }: { training: boolean; seed?: number }): Tensor {
  check(p >= 0 && p <= 1, 'dropout', `probability must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  return dropoutOp([x], { p, rng: nextStream(seed) });
}

// ---------------------------------------------------------------- bilinear upsampling

const upsampleOp = defineOp<{ geometry: UpsampleGeometry; opts: UpsampleOptions }>('upsampleBilinear', {
  forward: ([x], a) => upsampleRaw(x, a.opts),
  backward: (g, { inputs: [x], attrs: a }) => [upsampleBilinearBackward(g, x.shape, a.geometry)],
}, 'nn');

/**
 * Bilinear upsampling (torch.nn.functional.interpolate, mode='bilinear') to `size` or by
 * `scaleFactor` (output ⌊in·scale⌋, source coordinates use 1/scale), alignCorners default false.
 */
export function upsampleBilinear(x: Tensor, opts: UpsampleOptions): Tensor {
  return upsampleOp([x], { geometry: upsampleGeometry('upsampleBilinear', x, opts), opts });
}
