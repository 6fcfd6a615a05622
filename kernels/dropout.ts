// Dropout (Srivastava et al., JMLR 2014) with inverted scaling: y = x · keep / (1 − p). The keep
// mask is a pure function of (key, stream, element index) through Philox4x32-10, so the GPU kernel
// and the CPU reference drop the same elements, and the backward (the same map applied to the
// upstream gradient) recomputes the mask instead of storing it.

import { check, checkInputs, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { linearKernel } from './wgsl.js';
import { philox, PHILOX_WGSL } from './random.js';
import { Tensor } from './tensor.js';

const WG = 256;
/**
 * Third counter word of the dropout draws: rand (0) and randn (1) use other values, so a mask
 * never repeats the numbers of a rand() call made with the same seed.
 */
const DROPOUT_DOMAIN = 2;

/** One invocation per Philox draw: 4 elements. */
const DROPOUT_WGSL = linearKernel({
  preamble: PHILOX_WGSL,
  uniforms: { n: 'u32', stream: 'u32', k0: 'u32', k1: 'u32', threshold: 'u32', scale: 'f32' },
  read: { x: 'f32' }, write: { y: 'f32' }, wg: WG,
}, /* wgsl */ `  if (i * 4u >= p.n) { return; }
  let r = philox(vec4<u32>(i, p.stream, ${DROPOUT_DOMAIN}u, 0u), vec2<u32>(p.k0, p.k1));
  for (var lane = 0u; lane < 4u; lane++) {
    let e = i * 4u + lane;
    if (e >= p.n) { break; }
    y[e] = select(0.0, x[e] * p.scale, (r[lane] >> 8u) >= p.threshold);
  }`);

/** The stream a mask is drawn from (see nextStream in kernels/random.ts). */
export interface DropoutStream {
  key: [number, number];
  stream: number;
}

/** Element i is kept when the top 24 bits of its draw reach ⌈p·2²⁴⌉: P(keep) = 1 − p to 2⁻²⁴, exact on both backends. */
function threshold(p: number): number {
  return Math.min(2 ** 24, Math.ceil(p * 2 ** 24));
}

/**
 * y = x · keep / (1 − p), keep drawn from `rng`; element i uses lane i mod 4 of
 * philox((⌊i/4⌋, stream, 2, 0), key). p = 1 drops everything (y = 0).
 */
export function dropoutApply(x: Tensor, p: number, rng: DropoutStream): Tensor {
  const op = 'dropout';
  checkInputs(op, [x]);
  check(x.dtype === 'f32', op, `needs an f32 input, got ${x.dtype} ${fmtShape(x.shape)}`);
  check(p >= 0 && p <= 1, op, `probability must be in [0, 1], got ${p}`);
  const t = threshold(p);
  const scale = p < 1 ? 1 / (1 - p) : 0;
  const out = Tensor.empty(x.shape, 'f32', x.device, op);
  if (x.device === 'cpu') {
    const xs = x.cpu, o = out.cpu;
    for (let q = 0; q * 4 < xs.length; q++) {
      const r = philox(q, rng.stream, DROPOUT_DOMAIN, 0, rng.key[0], rng.key[1]);
      for (let lane = 0; lane < 4 && q * 4 + lane < xs.length; lane++) {
        const i = q * 4 + lane;
        o[i] = r[lane] >>> 8 >= t ? xs[i] * scale : 0;
      }
    }
    return out;
  }
  const k = runtime().kernel('dropout.apply', DROPOUT_WGSL);
  runtime().dispatch(k, { x: x.binding(), y: out.binding() }, { n: x.size, stream: rng.stream, k0: rng.key[0], k1: rng.key[1], threshold: t, scale }, grid1(Math.ceil(x.size / 4 / WG)));
  return out;
}
