import { describe, expect, it } from 'vitest';
import { philox, PHILOX_WGSL, rand, randn, manualSeed, runtime, tensor, hasWebGPU, Tensor } from '../../kernels/index.js';
import { kernelHeader } from '../../kernels/wgsl.js';

// Random123 kat_vectors, "philox4x32 10" lines: counter (4 words), key (2 words) -> output (4 words)
const KAT: [number[], number[], number[]][] = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
  [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
];

const gpu = (): 'webgpu' | 'cpu' => (hasWebGPU() ? 'webgpu' : 'cpu');

/** Runs PHILOX_WGSL on each [counter, key] row of `cases` (6 words each); returns 4 words per row. */
async function philoxOnGPU(cases: number[][]): Promise<number[][]> {
  const input = tensor(Uint32Array.from(cases.flat()), [cases.length, 6]);
  const out = Tensor.empty([cases.length, 4], 'u32');
  const k = runtime().kernel('test.philox', /* wgsl */ `${kernelHeader({ preamble: PHILOX_WGSL, read: { cases: 'u32' }, write: { y: 'vec4<u32>' }, wg: 1 })}
  let b = 6u * wid.x;
  y[wid.x] = philox(vec4<u32>(cases[b], cases[b + 1u], cases[b + 2u], cases[b + 3u]), vec2<u32>(cases[b + 4u], cases[b + 5u]));
}`);
  runtime().dispatch(k, { cases: input.binding(), y: out.binding() }, undefined, [cases.length]);
  const words = Array.from(await out.data());
  return cases.map((_, i) => words.slice(4 * i, 4 * i + 4));
}

function moments(v: ArrayLike<number>): { mean: number; std: number } {
  let s = 0, s2 = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  const mean = s / v.length;
  for (let i = 0; i < v.length; i++) s2 += (v[i] - mean) ** 2;
  return { mean, std: Math.sqrt(s2 / (v.length - 1)) };
}

describe('Philox4x32-10', () => {
  it('CPU implementation matches the Random123 known answers', () => {
    for (const [c, k, want] of KAT) expect(philox(c[0], c[1], c[2], c[3], k[0], k[1])).toEqual(want);
  });

  it('WGSL implementation matches the Random123 known answers', async () => {
    if (!hasWebGPU()) return;
    expect(await philoxOnGPU(KAT.map(([c, k]) => [...c, ...k]))).toEqual(KAT.map(([, , want]) => want));
  });
});

describe('rand / randn', () => {
  const SIZES = [[1], [7], [2, 129], [3, 1, 5]];

  it('uniform draws are bit-identical on both backends for the same seed', async () => {
    if (!hasWebGPU()) return;
    for (const shape of SIZES) {
      const g = await rand(shape, { seed: 1234, device: 'webgpu' }).data();
      const c = await rand(shape, { seed: 1234, device: 'cpu' }).data();
      expect(Array.from(g)).toEqual(Array.from(c, Math.fround));
    }
    // with a range the f32 affine map may round differently from float64, by at most an ulp or so
    const g = await rand([1000], { seed: 7, a: -2, b: 3, device: 'webgpu' }).data();
    const c = await rand([1000], { seed: 7, a: -2, b: 3, device: 'cpu' }).data();
    for (let i = 0; i < g.length; i++) expect(Math.abs(g[i] - c[i])).toBeLessThan(1e-6);
  });

  it('normal draws agree across backends within the accuracy WGSL guarantees for cos and sin', async () => {
    if (!hasWebGPU()) return;
    // WGSL allows cos/sin an absolute error of 2^-11 (SwiftShader: 1.9e-4, lavapipe: 1e-7), scaled
    // by the Box-Muller radius sqrt(-2 log u1) <= 5.8
    const tol = 1e-5 + 5.8 * 2 ** -11;
    for (const shape of [...SIZES, [5001]]) {
      const g = await randn(shape, { seed: 99, device: 'webgpu' }).data();
      const c = await randn(shape, { seed: 99, device: 'cpu' }).data();
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - c[i]));
      expect(worst).toBeLessThan(tol);
    }
  });

  it('an explicit seed is a pure function of the seed and the element index', async () => {
    const a = await rand([10], { seed: 5, device: gpu() }).data();
    const b = await rand([25], { seed: 5, device: gpu() }).data();
    expect(Array.from(b.slice(0, 10))).toEqual(Array.from(a));
    const n1 = await randn([9], { seed: 5, device: gpu() }).data();
    const n2 = await randn([4, 4], { seed: 5, device: gpu() }).data();
    expect(Array.from(n2.slice(0, 9))).toEqual(Array.from(n1));
  });

  it('different seeds and successive global draws give different streams', async () => {
    const a = Array.from(await rand([64], { seed: 1, device: gpu() }).data());
    const b = Array.from(await rand([64], { seed: 2, device: gpu() }).data());
    expect(a).not.toEqual(b);
    const c = Array.from(await rand([64], { device: gpu() }).data());
    const d = Array.from(await rand([64], { device: gpu() }).data());
    expect(c).not.toEqual(d);
    // streams are not merely shifted copies of each other
    expect(new Set([...a, ...b, ...c, ...d]).size).toBeGreaterThan(250);
  });

  it('manualSeed reproduces the global sequence', async () => {
    manualSeed(42);
    const first = [await rand([33], { device: gpu() }).data(), await randn([33], { device: gpu() }).data()].map((t) => Array.from(t));
    manualSeed(42);
    const again = [await rand([33], { device: gpu() }).data(), await randn([33], { device: gpu() }).data()].map((t) => Array.from(t));
    expect(again).toEqual(first);
    if (hasWebGPU()) {
      manualSeed(42);
      const cpu = Array.from(await rand([33], { device: 'cpu' }).data(), Math.fround);
      expect(cpu).toEqual(first[0]); // the global stream is the same on both backends
    }
    manualSeed(43);
    expect(Array.from(await rand([33], { device: gpu() }).data())).not.toEqual(first[0]);
  });

  it('has the right moments over 1e5 draws (within 5 standard errors)', async () => {
    const n = 100_000;
    for (const device of hasWebGPU() ? (['webgpu', 'cpu'] as const) : (['cpu'] as const)) {
      const u = moments(await rand([n], { seed: 11, device }).data());
      // U[0,1): mean 1/2, std 1/sqrt(12); se(mean) = 1/sqrt(12n), se(std) = sqrt(mu4 - sigma^4)/(2 sigma sqrt(n)) = 1/sqrt(60n)
      expect(Math.abs(u.mean - 0.5)).toBeLessThan(5 / Math.sqrt(12 * n));
      expect(Math.abs(u.std - 1 / Math.sqrt(12))).toBeLessThan(5 / Math.sqrt(60 * n));
      const z = moments(await randn([n], { seed: 12, a: 3, b: 2, device }).data());
      // N(3, 2^2): se(mean) = 2/sqrt(n), se(std) = 2/sqrt(2n)
      expect(Math.abs(z.mean - 3)).toBeLessThan(5 * 2 / Math.sqrt(n));
      expect(Math.abs(z.std - 2)).toBeLessThan(5 * 2 / Math.sqrt(2 * n));
      const w = await rand([n], { seed: 13, a: -1, b: 1, device }).data();
      expect(Math.min(...w)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...w)).toBeLessThan(1);
    }
  });
});
