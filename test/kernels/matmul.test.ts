import { describe, expect, it } from 'vitest';
import { subgroupGemmSize } from '../../kernels/gemm-subgroup.js';
import { GEMM_TILES, OpError, checkTile, device, gemmGrid, gemmWGSL, hasWebGPU, matmul, runtime, tensor, zeros, type GemmTile, type MatmulOptions } from '../../kernels/index.js';
import { kernelBindings } from '../../kernels/wgsl.js';
import { compare, pair, randomArray, relErr } from '../helpers.js';

const TOL = 1e-4;

interface Case {
  a: number[];
  b: number[];
  opts?: MatmulOptions;
}

const size = (s: number[]): number => s.reduce((x, y) => x * y, 1);

/** Runs one case on WebGPU and on the float64 reference; returns ||gpu - ref|| / ||ref||. */
async function check({ a, b, opts = {} }: Case): Promise<number> {
  const [ga, ca] = pair(randomArray(size(a)), a);
  const [gb, cb] = pair(randomArray(size(b)), b);
  return compare(matmul(ga, gb, opts), matmul(ca, cb, opts));
}

/** [M, K] x [K, N] with the given transposes. */
function mkn(M: number, K: number, N: number, transA = false, transB = false, tile?: GemmTile): Case {
  return { a: transA ? [K, M] : [M, K], b: transB ? [N, K] : [K, N], opts: { transA, transB, tile } };
}

describe('matmul', () => {
  it('runs on WebGPU when required', () => {
    if (process.env.REQUIRE_WEBGPU === '1') expect(hasWebGPU()).toBe(true);
  });

  it('the CPU reference computes a known product, with transposes, alpha, bias and accumulate', async () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3], { device: 'cpu' });
    const b = tensor([7, 8, 9, 10, 11, 12], [3, 2], { device: 'cpu' });
    expect(await matmul(a, b).toArray()).toEqual([[58, 64], [139, 154]]);
    const aT = tensor([1, 4, 2, 5, 3, 6], [3, 2], { device: 'cpu' });
    const bT = tensor([7, 9, 11, 8, 10, 12], [2, 3], { device: 'cpu' });
    expect(await matmul(aT, bT, { transA: true, transB: true }).toArray()).toEqual([[58, 64], [139, 154]]);
    const out = tensor([1, 1, 1, 1], [2, 2], { device: 'cpu' });
    const bias = tensor([10, 20], [2], { device: 'cpu' });
    matmul(a, b, { alpha: 0.5, bias, out, accumulate: true });
    expect(await out.toArray()).toEqual([[40, 53], [80.5, 98]]);
  });

  it('matches the reference at odd, tile-straddling and degenerate sizes', async () => {
    const cases: [number, number, number][] = [
      [1, 1, 1], [1, 7, 1], [1, 64, 1], [3, 1, 5], [2, 3, 4], [33, 65, 17], [127, 129, 63], [64, 64, 64], [65, 33, 129], [8, 100, 1000], [130, 20, 7],
    ];
    for (const [M, K, N] of cases) expect(await check(mkn(M, K, N)), `${M}x${K}x${N}`).toBeLessThan(TOL);
  });

  it('handles long K up to 1024', async () => {
    for (const [M, K, N] of [[17, 1024, 9], [64, 1024, 64], [5, 1021, 12]]) expect(await check(mkn(M, K, N)), `${M}x${K}x${N}`).toBeLessThan(TOL);
  });

  it('all four transpose combinations, on the vec4 and the scalar paths', async () => {
    // (36, 64, 40): every extent a multiple of 4 (vec4 loads); (33, 65, 17): none is
    for (const [M, K, N] of [[36, 64, 40], [33, 65, 17]]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) expect(await check(mkn(M, K, N, transA, transB)), `${M}x${K}x${N} tA=${transA} tB=${transB}`).toBeLessThan(TOL);
      }
    }
  });

  it('every tile class is correct on partial tiles', async () => {
    // past one tile in M and N for every class, scalar loads and stores, both operands transposed
    // (the vec4 paths run through the default tiles in the other tests)
    for (const [name, tile] of Object.entries(GEMM_TILES)) expect(await check(mkn(137, 45, 130, true, true, tile)), name).toBeLessThan(TOL);
  });

  it('every tile class is correct where the sizes fit it (its code without bounds checks)', async () => {
    // a CPU adapter compiles the checked code for every size unless a tile is forced, so this is where
    // the unchecked code of each class runs there; 128 x 16 x 128 fits every tile
    for (const [name, tile] of Object.entries(GEMM_TILES)) expect(await check(mkn(128, 16, 128, false, false, tile)), name).toBeLessThan(TOL);
  });

  it('on a CPU adapter, sizes that fit a tile and sizes that do not share one compiled GEMM', async () => {
    // (lavapipe takes the subgroup GEMM instead; SwiftShader, in the browser suite, runs this)
    if (!hasWebGPU() || !device().info.isFallbackAdapter || subgroupGemmSize()) return;
    expect(await check(mkn(124, 16, 124))).toBeLessThan(TOL);
    const compiled = runtime().compiled.pipelines;
    expect(await check(mkn(128, 16, 128))).toBeLessThan(TOL);
    expect(runtime().compiled.pipelines).toBe(compiled);
  });

  it('gemmWGSL takes custom loaders and epilogues', async () => {
    if (!hasWebGPU()) return;
    // A is computed in its loader (no buffer), B comes from a buffer, the epilogue applies relu
    const M = 19, K = 23, N = 10;
    const aOf = (m: number, k: number): number => ((m + 2 * k) % 7) - 3;
    const bv = randomArray(K * N);
    const [gb] = pair(bv, [K, N]);
    const y = zeros([M, N]);
    const tile = GEMM_TILES.medium;
    const k = runtime().kernel('test.gemm', gemmWGSL({
      tile,
      decls: kernelBindings({ uniforms: { M: 'u32', N: 'u32', K: 'u32' }, read: { b: 'f32' }, write: { y: 'f32' } }),
      M: 'p.M',
      N: 'p.N',
      K: 'p.K',
      a: { contiguous: 'k', read: 'return f32((m + 2u * k) % 7u) - 3.0;' },
      b: { contiguous: 'n', read: 'return b[k * p.N + n];' },
      out: { write: 'y[m * p.N + n] = max(v, 0.0);' },
    }));
    runtime().dispatch(k, { b: gb.binding(), y: y.binding() }, { M, N, K }, gemmGrid(tile, M, N, 1));
    const ref = new Float64Array(M * N);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let kk = 0; kk < K; kk++) s += aOf(m, kk) * bv[kk * N + n];
        ref[m * N + n] = Math.max(s, 0);
      }
    }
    expect(relErr(await y.data(), ref)).toBeLessThan(TOL);
  });

  it('checkTile enforces the invocation and workgroup-memory budgets', () => {
    expect(() => checkTile({ tm: 128, tn: 128, tk: 8, rm: 4, rn: 4 })).toThrow(/1024 invocations/);
    expect(() => checkTile({ tm: 128, tn: 128, tk: 32, rm: 8, rn: 8 })).toThrow(/32768 bytes/);
    expect(() => checkTile({ tm: 64, tn: 64, tk: 8, rm: 6, rn: 4 })).toThrow(/multiples of 4/);
    for (const tile of Object.values(GEMM_TILES)) expect(() => checkTile(tile)).not.toThrow();
  });

  it('batches and broadcasts batch dimensions like NumPy', async () => {
    const cases: Case[] = [
      { a: [3, 17, 20], b: [3, 20, 9] },
      { a: [1, 8, 8], b: [8, 8] },
      { a: [3, 17, 20], b: [20, 9] },
      { a: [17, 20], b: [3, 20, 12] },
      { a: [2, 1, 5, 7], b: [1, 3, 7, 6] },
      { a: [2, 3, 5, 8], b: [3, 8, 4] },
      { a: [4, 1, 2, 9, 5], b: [3, 1, 6, 9], opts: { transA: true, transB: true } },
    ];
    for (const c of cases) {
      expect(await check(c), `${c.a} x ${c.b}`).toBeLessThan(TOL);
    }
    const [ga] = pair(randomArray(2 * 3 * 4), [2, 1, 3, 4]);
    const [gb] = pair(randomArray(5 * 4 * 6), [5, 4, 6]);
    expect(matmul(ga, gb).shape).toEqual([2, 5, 3, 6]);
  });

  it('fuses alpha, bias and accumulation into the epilogue', async () => {
    for (const [M, K, N] of [[9, 13, 11], [16, 32, 24]]) {
      const [ga, ca] = pair(randomArray(2 * M * K), [2, M, K]);
      const [gb, cb] = pair(randomArray(K * N), [K, N]);
      const [gbias, cbias] = pair(randomArray(N), [N]);
      const init = randomArray(2 * M * N);
      const [gout, cout] = pair(init, [2, M, N]);
      const opts = { alpha: -0.75, accumulate: true };
      expect(matmul(ga, gb, { ...opts, bias: gbias, out: gout })).toBe(gout);
      matmul(ca, cb, { ...opts, bias: cbias, out: cout });
      expect(await compare(gout, cout)).toBeLessThan(TOL);
      expect(await compare(matmul(ga, gb, { bias: gbias, alpha: 2 }), matmul(ca, cb, { bias: cbias, alpha: 2 }))).toBeLessThan(TOL);
    }
  });

  it('K = 0 gives zeros (plus bias), and empty outputs are fine', async () => {
    const [ga] = pair([], [3, 0]);
    const [gb] = pair([], [0, 5]);
    expect(Array.from(await matmul(ga, gb).data())).toEqual(new Array(15).fill(0));
    const [gbias] = pair([1, 2, 3, 4, 5], [5]);
    expect(Array.from(await matmul(ga, gb, { bias: gbias }).data())).toEqual([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
    const [ge] = pair([], [0, 4]);
    const [gf] = pair(randomArray(8), [4, 2]);
    expect(matmul(ge, gf).shape).toEqual([0, 2]);
  });

  it('rejects bad input with the op name and both shapes', () => {
    const a = zeros([2, 3]);
    const expectError = (fn: () => unknown, ...parts: string[]): void => {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OpError);
      for (const p of ['matmul', ...parts]) expect((err as Error).message).toContain(p);
    };
    expectError(() => matmul(a, zeros([4, 5])), 'inner dimensions differ', '[2, 3]', '[4, 5]');
    expectError(() => matmul(a, zeros([2, 5]), { transA: false, transB: true }), '[2, 3]', '[2, 5]');
    expectError(() => matmul(zeros([3]), zeros([3, 2])), 'rank >= 2', '[3]', '[3, 2]');
    expectError(() => matmul(a, zeros([3, 2], { dtype: 'i32' })), 'f32', '[2, 3]', '[3, 2]');
    expectError(() => matmul(zeros([2, 2, 3]), zeros([3, 3, 4])), 'do not broadcast', '[2, 2, 3]', '[3, 3, 4]');
    expectError(() => matmul(a, zeros([3, 4]), { bias: zeros([3]) }), 'bias', '[3]');
    expectError(() => matmul(a, zeros([3, 4]), { out: zeros([2, 5]) }), 'out', '[2, 5]');
    expectError(() => matmul(a, zeros([3, 4]), { accumulate: true }), 'accumulate needs');
  });
});
