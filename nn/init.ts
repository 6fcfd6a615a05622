// Parameter initialisation as torch.nn.init does it, drawn from our seeded Philox generator
// (kernels/random.ts) so that a model built twice after manualSeed(s) is identical. Every function
// fills its tensor in place (as torch's `*_` functions), so optimizers keep their references.

import type { Backend } from '../kernels/device.js';
import { full } from '../kernels/creation.js';
import { cast } from '../kernels/elementwise.js';
import { check, fmtShape } from '../kernels/errors.js';
import { random } from '../kernels/random.js';
import { runtime } from '../kernels/runtime.js';
import { Tensor } from '../kernels/tensor.js';

let initEnabled = true;

/**
 * Runs fn with parameter initialisation switched off (torch.nn.utils.skip_init): the parameters
 * of modules built inside are left uninitialised (like torch.empty), for a model that is about to
 * load a checkpoint or that is only inspected. Buffers (BatchNorm statistics) are still set.
 */
export function skipInit<T>(fn: () => T): T {
  const prev = initEnabled;
  initEnabled = false;
  try {
    return fn();
  } finally {
    initEnabled = prev;
  }
}

/**
 * Copies src's values into dst's storage (shapes must match; dtypes are converted). A source on
 * the GPU cannot be copied into a CPU tensor synchronously: move it with toDevice first.
 */
export function copyInto(dst: Tensor, src: Tensor, op = 'copyInto'): void {
  check(!dst.isDisposed && !src.isDisposed, op, 'a tensor was used after dispose()');
  check(dst.shape.join() === src.shape.join(), op, () => `cannot copy shape ${fmtShape(src.shape)} into ${fmtShape(dst.shape)}`);
  if (dst.device === 'cpu') {
    check(src.device === 'cpu', op, () => `cannot copy a WebGPU tensor ${fmtShape(src.shape)} into a CPU tensor synchronously (use toDevice)`);
    if (dst.cpu !== src.cpu) dst.cpu.set(src.cpu);
    return;
  }
  if (src.device === 'cpu') {
    const host = dst.dtype === 'f32' ? Float32Array.from(src.cpu) : dst.dtype === 'i32' ? Int32Array.from(src.cpu) : Uint32Array.from(src.cpu);
    runtime().upload(dst.buffer, host);
    return;
  }
  if (dst.buffer === src.buffer) return; // a view of the same storage (a buffer cannot be copied onto itself)
  const converted = src.dtype === dst.dtype ? src : cast(src, dst.dtype);
  runtime().copy(converted.buffer, 0, dst.buffer, 0, dst.size * 4);
  if (converted !== src) converted.dispose();
}

/** Fills t in place with the tensor `make` builds on t's device; does nothing under skipInit. */
export function fill(t: Tensor, make: (device: Backend) => Tensor): Tensor {
  if (!initEnabled) return t;
  const values = make(t.device);
  copyInto(t, values, 'init');
  values.dispose();
  return t;
}

/** U(low, high) */
export const uniform = (t: Tensor, low = 0, high = 1): Tensor => fill(t, (device) => random('uniform', t.shape, { device, a: low, b: high }));
/** N(mean, std²) */
export const normal = (t: Tensor, mean = 0, std = 1): Tensor => fill(t, (device) => random('normal', t.shape, { device, a: mean, b: std }));
export const constant = (t: Tensor, value: number): Tensor => fill(t, (device) => full(t.shape, value, { device, dtype: t.dtype }));
export const zeros = (t: Tensor): Tensor => constant(t, 0);
export const ones = (t: Tensor): Tensor => constant(t, 1);

/** torch's _calculate_fan_in_and_fan_out: fan_in = size(1)·receptive field, fan_out = size(0)·receptive field. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  check(shape.length >= 2, 'init', `fan in and fan out need a tensor of rank >= 2, got ${fmtShape(shape)}`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

export type Nonlinearity = 'linear' | 'conv2d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** torch.nn.init.calculate_gain: relu √2, leaky_relu √(2/(1+slope²)) (slope defaults to 0.01), tanh 5/3, selu 3/4, else 1. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'tanh':
      return 5 / 3;
    case 'selu':
      return 3 / 4;
    default:
      return 1;
  }
}

export interface KaimingOptions {
  /** Negative slope of the leaky_relu that follows (torch default 0). */
  a?: number;
  mode?: 'fan_in' | 'fan_out';
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, { a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu' }: KaimingOptions): number {
  const { fanIn, fanOut } = fans(t.shape);
  const fan = mode === 'fan_in' ? fanIn : fanOut;
  check(fan > 0, 'init', `kaiming initialisation of a tensor ${fmtShape(t.shape)} with ${mode} = 0`);
  return calculateGain(nonlinearity, a) / Math.sqrt(fan);
}

/** He et al. 2015 (ICCV), uniform: U(−b, b) with b = gain·√(3/fan). */
export const kaimingUniform = (t: Tensor, opts: KaimingOptions = {}): Tensor => {
  const bound = Math.sqrt(3) * kaimingStd(t, opts);
  return uniform(t, -bound, bound);
};

/** He et al. 2015 (ICCV), normal: N(0, std²) with std = gain/√fan. */
export const kaimingNormal = (t: Tensor, opts: KaimingOptions = {}): Tensor => normal(t, 0, kaimingStd(t, opts));
