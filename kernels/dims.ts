// Small shape helpers shared by the launchers: merging the dimensions that every operand walks
// contiguously, padding a shape to the kernels' fixed uniform rank, and (h, w) pairs.

/** Largest rank a kernel's shape/stride uniforms hold: two vec4<u32>. */
export const MAX_UNIFORM_RANK = 8;

/**
 * Drops size-1 dims and merges a dim into the previous one when every stride set walks the pair
 * contiguously (stride[d-1] = stride[d] * shape[d]): fewer div/mods per element. Elementwise
 * broadcasting, strided copies and matmul's batch dims all index through the result.
 */
export function mergeDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const out: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = out.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k][last] === s[d] * shape[d])) {
      out[last] *= shape[d];
      strides.forEach((s, k) => (st[k][last] = s[d]));
    } else {
      out.push(shape[d]);
      strides.forEach((s, k) => st[k].push(s[d]));
    }
  }
  return { shape: out, strides: st };
}

/** `a` padded with zeros to MAX_UNIFORM_RANK entries (an `array<vec4<u32>, 2>` uniform). */
export const pad8 = (a: readonly number[]): number[] => [...a, ...new Array<number>(MAX_UNIFORM_RANK - a.length).fill(0)];

/** A size given once for both spatial dims, or as [h, w]. */
export type Pair = number | readonly [number, number];

/** [h, w] of a Pair. */
export const pairOf = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/**
 * PyTorch's nearest_idx ('nearest' resampling, F.interpolate and the detection transforms' mask
 * resize): the source index of output position dst, in float32 as its CPU and CUDA kernels compute
 * it; `scale` is the float32 in/out ratio (or 1/scale_factor).
 */
export function nearestIndex(dst: number, inSize: number, outSize: number, scale: number): number {
  if (outSize === inSize) return dst;
  if (outSize === 2 * inSize) return dst >> 1;
  return Math.min(Math.floor(Math.fround(Math.fround(dst) * scale)), inSize - 1);
}
