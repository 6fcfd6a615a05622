// Shared test utilities: random inputs, relative error against the CPU reference.
import { hasWebGPU, tensor, type Tensor, type DType } from '../index.node.js';

let state = 0x9e3779b9;
/** Deterministic test data (xorshift); fresh values per call. */
/** The backends to run a test on: the CPU reference, and WebGPU when an adapter exists. */
export const backends = (): ('cpu' | 'webgpu')[] => (hasWebGPU() ? ['cpu', 'webgpu'] : ['cpu']);

export function randomArray(n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    a[i] = lo + (hi - lo) * ((state >>> 0) / 4294967296);
  }
  return a;
}

export function randomInts(n: number, lo: number, hi: number): Int32Array {
  return Int32Array.from(randomArray(n, lo, hi), Math.floor);
}

/** The same values on the GPU (when present) and on the CPU reference backend. */
export function pair(values: ArrayLike<number>, shape: number[], dtype: DType = 'f32'): [Tensor, Tensor] {
  return [tensor(values, shape, { dtype, device: hasWebGPU() ? 'webgpu' : 'cpu' }), tensor(values, shape, { dtype, device: 'cpu' })];
}

/** ||a - b|| / ||b|| (absolute norm when the reference is zero). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) !== Number.isNaN(b[i])) return Infinity;
    if (Number.isNaN(b[i])) continue;
    if (a[i] === b[i]) { den += b[i] * b[i]; continue; }
    num += (a[i] - b[i]) ** 2;
    den += b[i] * b[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Reads both tensors back and returns their relative error; shapes must match. */
export async function compare(gpu: Tensor, cpu: Tensor): Promise<number> {
  if (gpu.shape.join() !== cpu.shape.join()) throw new Error(`shape ${gpu.shape} vs reference ${cpu.shape}`);
  return relErr(await gpu.data(), await cpu.data());
}
