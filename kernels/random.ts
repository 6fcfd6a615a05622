// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): element i of a draw depends
// only on (seed, stream offset, i), so the GPU kernel and the CPU reference give the same numbers.

import { backend, type Backend } from './device.js';
import { runtime, grid1 } from './runtime.js';
import { linearKernel } from './wgsl.js';
import { Tensor, type Shape } from './tensor.js';

const M0 = 0xd2511f53, M1 = 0xcd9e8d57, W0 = 0x9e3779b9, W1 = 0xbb67ae85;

function mulhi(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox4x32-10 of counter (c0..c3) under key (k0, k1). */
export function philox(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number): [number, number, number, number] {
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** WGSL Philox4x32-10 and the uniform/normal mappings; shared by every kernel that draws numbers. */
export const PHILOX_WGSL = /* wgsl */ `
fn mulhi32(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}
fn philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr; var k = key;
  for (var r = 0u; r < 10u; r++) {
    let hi0 = mulhi32(0xd2511f53u, c.x); let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi32(0xcd9e8d57u, c.z); let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}
// uniform in [0, 1) with 24 random bits
fn u01(x: u32) -> f32 { return f32(x >> 8u) * 5.9604644775390625e-8; }
`;

const u01 = (x: number): number => (x >>> 8) * 5.9604644775390625e-8;

// ---- the global generator: each draw without an explicit seed takes the next stream offset.
let globalSeed = 0x5eed;
let globalOffset = 0;

export function manualSeed(seed: number): void {
  globalSeed = seed >>> 0;
  globalOffset = 0;
}

/** Key and stream for a draw: an explicit seed gives a pure function of that seed. */
export function nextStream(seed?: number): { key: [number, number]; stream: number } {
  if (seed !== undefined) return { key: [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0], stream: 0 };
  return { key: [globalSeed, 0x243f6a88], stream: globalOffset++ };
}

export type Distribution = 'uniform' | 'normal';

export interface RandomOptions {
  seed?: number;
  device?: Backend;
  /** uniform: [low, high); normal: mean, std */
  a?: number;
  b?: number;
}

function cpuRandom(dist: Distribution, n: number, key: [number, number], stream: number, a: number, b: number): Float64Array {
  const out = new Float64Array(n);
  if (dist === 'uniform') {
    for (let i = 0; i < n; i++) out[i] = a + (b - a) * u01(philox(i, stream, 0, 0, key[0], key[1])[0]);
  } else {
    for (let i = 0; i < n; i += 2) {
      const x = philox(i >>> 1, stream, 1, 0, key[0], key[1]);
      const u1 = u01(x[0]) + 5.9604644775390625e-8; // (0, 1]
      const r = Math.sqrt(-2 * Math.log(u1));
      const th = 2 * Math.PI * u01(x[1]);
      out[i] = a + b * r * Math.cos(th);
      if (i + 1 < n) out[i + 1] = a + b * r * Math.sin(th);
    }
  }
  return out;
}

export function random(dist: Distribution, shape: Shape, opts: RandomOptions = {}): Tensor {
  const dev = opts.device ?? backend();
  const { key, stream } = nextStream(opts.seed);
  const a = opts.a ?? 0;
  const b = opts.b ?? 1;
  const out = Tensor.empty(shape, 'f32', dev, `rand(${dist})`);
  if (dev === 'cpu') {
    out.cpu.set(cpuRandom(dist, out.size, key, stream, a, b));
    return out;
  }
  const k = runtime().kernel(`random.${dist}`, dist === 'uniform' ? UNIFORM_WGSL : NORMAL_WGSL);
  const threads = dist === 'uniform' ? out.size : Math.ceil(out.size / 2);
  runtime().dispatch(k, { y: out.binding() }, { n: out.size, stream, k0: key[0], k1: key[1], a, b }, grid1(Math.ceil(threads / 256)));
  return out;
}

export const rand = (shape: Shape, opts?: RandomOptions): Tensor => random('uniform', shape, opts);
export const randn = (shape: Shape, opts?: RandomOptions): Tensor => random('normal', shape, opts);

const randomWGSL = (dist: Distribution): string => linearKernel({
  preamble: PHILOX_WGSL, uniforms: { n: 'u32', stream: 'u32', k0: 'u32', k1: 'u32', a: 'f32', b: 'f32' }, write: { y: 'f32' }, wg: 256,
}, dist === 'uniform' ? `
  if (i >= p.n) { return; }
  y[i] = p.a + (p.b - p.a) * u01(philox(vec4<u32>(i, p.stream, 0u, 0u), vec2<u32>(p.k0, p.k1)).x);` : `
  let j = 2u * i;
  if (j >= p.n) { return; }
  let x = philox(vec4<u32>(i, p.stream, 1u, 0u), vec2<u32>(p.k0, p.k1));
  let r = sqrt(-2.0 * log(u01(x.x) + 5.9604644775390625e-8));
  let th = 6.283185307179586 * u01(x.y);
  y[j] = p.a + p.b * r * cos(th);
  if (j + 1u < p.n) { y[j + 1u] = p.a + p.b * r * sin(th); }`);
const UNIFORM_WGSL = randomWGSL('uniform');
const NORMAL_WGSL = randomWGSL('normal');
