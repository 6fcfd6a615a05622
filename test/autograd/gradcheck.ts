// Gradient checking: analytic gradients on the float64 CPU backend against central finite
// differences, then the WebGPU backward against the CPU backward.
import { expect } from 'vitest';
import { hasWebGPU, noGrad, scope, tensor, type DType, type Tensor } from '../../index.node.js';
import { mul, sum } from '../../autograd/ops.js';
import { randomArray, relErr } from '../helpers.js';

export interface Input {
  values: ArrayLike<number>;
  shape: number[];
  dtype?: DType;
  /** false for inputs that are not differentiated (indices, masks, targets) */
  grad?: boolean;
}

export const inp = (shape: number[], lo = -1, hi = 1): Input => ({ values: randomArray(shape.reduce((a, b) => a * b, 1), lo, hi), shape });
export const ints = (values: number[], shape: number[]): Input => ({ values, shape, dtype: 'i32', grad: false });
export const fixed = (shape: number[], lo = -1, hi = 1): Input => ({ ...inp(shape, lo, hi), grad: false });

/** Runs `f` on both backends and checks every gradient. Returns the max errors for reporting. */
export async function gradcheck(
  f: (xs: Tensor[]) => Tensor,
  inputs: Input[],
  { eps = 1e-6, tol = 1e-6, gpuTol = 1e-4 } = {},
): Promise<{ fd: number; gpu: number }> {
  const make = (device: 'cpu' | 'webgpu') =>
    inputs.map((i) => {
      const t = tensor(i.values, i.shape, { dtype: i.dtype ?? 'f32', device });
      if (i.grad !== false && (i.dtype ?? 'f32') === 'f32') t.requireGrad();
      return t;
    });
  let weights: Float32Array | null = null;
  // loss = sum(f(x) * w) with fixed random w, so the upstream gradient is not uniform
  const lossOf = (xs: Tensor[], device: 'cpu' | 'webgpu'): Tensor => {
    const out = f(xs);
    weights ??= randomArray(out.size, 0.5, 1.5);
    return sum(mul(out, tensor(weights, [...out.shape], { device })));
  };
  const cpu = make('cpu');
  const cpuGrads = scope(() => {
    lossOf(cpu, 'cpu').backward();
    return cpu.map((t) => t.grad);
  });
  let fdErr = 0;
  for (let k = 0; k < cpu.length; k++) {
    if (!cpu[k].requiresGrad) continue;
    const x = cpu[k].cpu as Float64Array;
    const numeric = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      const at = (d: number) => {
        x[i] = v + d;
        const l = noGrad(() => scope(() => lossOf(cpu, 'cpu').cpu[0]));
        x[i] = v;
        return l;
      };
      numeric[i] = (at(eps) - at(-eps)) / (2 * eps);
    }
    const err = relErr(cpuGrads[k]!.cpu, numeric);
    fdErr = Math.max(fdErr, err);
    expect(err, `finite differences, input ${k}`).toBeLessThan(tol);
  }
  let gpuErr = 0;
  if (hasWebGPU()) {
    const gpu = make('webgpu');
    scope(() => lossOf(gpu, 'webgpu').backward());
    for (let k = 0; k < gpu.length; k++) {
      if (!gpu[k].requiresGrad) continue;
      const err = relErr(await gpu[k].grad!.data(), cpuGrads[k]!.cpu);
      gpuErr = Math.max(gpuErr, err);
      expect(err, `WebGPU vs CPU backward, input ${k}`).toBeLessThan(gpuTol);
      gpu[k].dispose();
    }
  }
  cpu.forEach((t) => t.dispose());
  return { fd: fdErr, gpu: gpuErr };
}
