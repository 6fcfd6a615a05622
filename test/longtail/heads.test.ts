import { describe, expect, it } from 'vitest';
import { hasWebGPU, tensor, type Tensor } from '../../index.node.js';
import { OpError } from '../../kernels/errors.js';
import { copyInto } from '../../nn/init.js';
import { parameter } from '../../nn/module.js';
import { CausalNormHead, CosineHead, LinearHead, TauNormHead, tauNormalizedWeight } from '../../longtail/heads.js';
import { gradcheck, fixed, inp } from '../autograd/gradcheck.js';
import { randomArray, relErr } from '../helpers.js';

const devices = (): ('cpu' | 'webgpu')[] => (hasWebGPU() ? ['cpu', 'webgpu'] : ['cpu']);
const set = (t: Tensor, v: ArrayLike<number>): void => copyInto(t, tensor(v, [...t.shape], { device: 'cpu' }));
const names = (m: { namedParameters(): [string, Tensor][] }): string[] => m.namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`);
const norm = (v: ArrayLike<number>, from: number, len: number, step = 1): number => {
  let s = 0;
  for (let k = 0; k < len; k++) s += v[from + k * step] ** 2;
  return Math.sqrt(s);
};

/** Direct float64 cosine logits s·(w_j·x)/(‖w_j‖‖x‖) for W [C, D] rows. */
function cosineReference(x: ArrayLike<number>, w: ArrayLike<number>, N: number, D: number, C: number, s: number): Float64Array {
  const out = new Float64Array(N * C);
  for (let n = 0; n < N; n++) for (let j = 0; j < C; j++) {
    let dot = 0;
    for (let d = 0; d < D; d++) dot += x[n * D + d] * w[j * D + d];
    out[n * C + j] = (s * dot) / (norm(x, n * D, D) * norm(w, j * D, D));
  }
  return out;
}

/** Direct float64 causal-norm logits, with the TDE term when alpha is given. */
function causalNormReference(x: ArrayLike<number>, w: ArrayLike<number>, c: ArrayLike<number>, N: number, D: number, C: number, K: number, tau: number, gamma: number, alpha: number): Float64Array {
  const d = D / K;
  const out = new Float64Array(N * C);
  for (let n = 0; n < N; n++) for (let j = 0; j < C; j++) {
    let z = 0;
    for (let k = 0; k < K; k++) {
      const xn = norm(x, n * D + k * d, d), wn = norm(w, j * D + k * d, d), cn = norm(c, k * d, d);
      let cos = 0;
      for (let e = 0; e < d; e++) cos += (x[n * D + k * d + e] / xn) * (c[k * d + e] / cn);
      for (let e = 0; e < d; e++) {
        const xe = x[n * D + k * d + e] / xn - alpha * cos * (c[k * d + e] / cn);
        z += xe * (w[j * D + k * d + e] / (wn + gamma));
      }
    }
    out[n * C + j] = (tau / K) * z;
  }
  return out;
}

describe('classifier heads', () => {
  it('name their parameters as the official PyTorch modules', () => {
    expect(names(new LinearHead(6, 4, { device: 'cpu' }))).toEqual(['fc.weight 4x6', 'fc.bias 4']);
    expect(names(new CosineHead(6, 4, { device: 'cpu' }))).toEqual(['weight 4x6']);
    expect(names(new CosineHead(6, 4, { device: 'cpu', learnScale: true, layout: 'columns' }))).toEqual(['weight 6x4', 'scale 1']);
    const causal = new CausalNormHead(6, 4, { device: 'cpu' });
    expect(names(causal)).toEqual(['weight 4x6']);
    expect([...causal.stateDict().keys()]).toEqual(['weight', 'embed_mean']);
  });

  it('linear head is W x + b (float64 reference), with and without bias', async () => {
    const N = 4, D = 6, C = 3;
    const x = randomArray(N * D), w = randomArray(C * D), b = randomArray(C);
    const ref = (bias: boolean) => Float64Array.from({ length: N * C }, (_, k) => {
      const n = Math.floor(k / C), j = k % C;
      let s = bias ? b[j] : 0;
      for (let d = 0; d < D; d++) s += w[j * D + d] * x[n * D + d];
      return s;
    });
    for (const device of devices()) {
      for (const bias of [true, false]) {
        const head = new LinearHead(D, C, { device, bias });
        set(head.fc.weight, w);
        if (bias) set(head.fc.bias!, b);
        expect(relErr(await head.forward(tensor(x, [N, D], { device })).data(), ref(bias)), `bias ${bias} on ${device}`).toBeLessThan(1e-6);
      }
    }
  });

  it('cosine head equals s·cos(w_j, x) in both weight layouts, on both backends', async () => {
    const N = 5, D = 7, C = 3;
    const x = randomArray(N * D), w = randomArray(C * D);
    const ref = cosineReference(x, w, N, D, C, 16);
    for (const device of devices()) {
      const rows = new CosineHead(D, C, { device });
      set(rows.weight, w);
      expect(relErr(await rows.forward(tensor(x, [N, D], { device })).data(), ref), `rows on ${device}`).toBeLessThan(1e-5);
      const columns = new CosineHead(D, C, { device, layout: 'columns', learnScale: true });
      const wt = new Float32Array(D * C);
      for (let j = 0; j < C; j++) for (let d = 0; d < D; d++) wt[d * C + j] = w[j * D + d];
      set(columns.weight, wt);
      expect(relErr(await columns.forward(tensor(x, [N, D], { device })).data(), ref), `columns on ${device}`).toBeLessThan(1e-5);
    }
  });

  it('cosine head gradients (features, weight, learnt scale) match finite differences', async () => {
    const N = 3, D = 5, C = 4;
    const heads = new Map<string, CosineHead>();
    await gradcheck(([x, w, s]) => {
      let head = heads.get(x.device);
      if (!head) heads.set(x.device, (head = new CosineHead(D, C, { device: x.device, learnScale: true })));
      head.weight = parameter(w);
      head.scale = parameter(s);
      return head.forward(x);
    }, [inp([N, D]), inp([C, D]), inp([1], 2, 4)]);
  });

  it('τ-normalised weights: w_j/‖w_j‖^τ; τ = 0 with the bias kept is the linear head', async () => {
    const D = 6, C = 4, N = 3;
    const w = randomArray(C * D), x = randomArray(N * D);
    for (const device of devices()) {
      const linear = new LinearHead(D, C, { device });
      set(linear.fc.weight, w);
      const normed = await tauNormalizedWeight(linear.fc.weight, 0.5).data();
      const ref = Float64Array.from(w, (v, i) => v / norm(w, Math.floor(i / D) * D, D) ** 0.5);
      expect(relErr(normed, ref), device).toBeLessThan(1e-5);
      const xs = tensor(x, [N, D], { device });
      const identity = new TauNormHead(linear.fc, 0, { keepBias: true });
      expect(relErr(await identity.forward(xs).data(), await linear.forward(xs).data()), device).toBeLessThan(1e-6);
      expect(new TauNormHead(linear.fc, 1).bias).toBeNull();
    }
  });

  it('causal-norm logits τ/K Σ_k w_k·x_k/((‖w_k‖ + γ)‖x_k‖), and TDE with α = 0 equals them', async () => {
    const N = 4, D = 8, C = 5, K = 2, tau = 16, gamma = 1 / 32;
    const x = randomArray(N * D), w = randomArray(C * D), c = randomArray(D, 0, 1);
    const plainRef = causalNormReference(x, w, c, N, D, C, K, tau, gamma, 0);
    const tdeRef = causalNormReference(x, w, c, N, D, C, K, tau, gamma, 1.5);
    for (const device of devices()) {
      const head = new CausalNormHead(D, C, { device, numHeads: K, tau, gamma, alpha: 1.5 }).eval();
      set(head.weight, w);
      set(head.embed_mean, c);
      const xs = tensor(x, [N, D], { device });
      const plain = await head.forward(xs).data();
      expect(relErr(plain, plainRef), device).toBeLessThan(1e-5);
      expect(relErr(await head.tdeLogits(xs, { alpha: 0 }).data(), plain), device).toBeLessThan(1e-6);
      expect(relErr(await head.tdeLogits(xs).data(), tdeRef), device).toBeLessThan(1e-5);
    }
  });

  it('training forwards fold the batch mean into embed_mean: x̄ ← μ·x̄ + mean(x)', async () => {
    const N = 3, D = 4;
    const a = randomArray(N * D), b = randomArray(N * D);
    const mean = (v: Float32Array, d: number): number => (v[d] + v[D + d] + v[2 * D + d]) / N;
    const ref = Array.from({ length: D }, (_, d) => 0.9 * mean(a, d) + mean(b, d));
    for (const device of devices()) {
      const head = new CausalNormHead(D, 2, { device, momentum: 0.9 });
      head.forward(tensor(a, [N, D], { device }));
      head.forward(tensor(b, [N, D], { device }));
      head.eval().forward(tensor(b, [N, D], { device })); // eval leaves it alone
      expect(relErr(await head.embed_mean.data(), ref), device).toBeLessThan(1e-6);
    }
  });

  it('causal-norm gradients (features and weight, plain and TDE) match finite differences', async () => {
    const N = 3, D = 6, C = 4;
    const heads = new Map<string, CausalNormHead>();
    const headOn = (w: Tensor): CausalNormHead => {
      let head = heads.get(w.device);
      if (!head) heads.set(w.device, (head = new CausalNormHead(D, C, { device: w.device, numHeads: 3, alpha: 0.7 }).eval()));
      head.weight = parameter(w);
      return head;
    };
    await gradcheck(([x, w]) => headOn(w).forward(x), [inp([N, D]), inp([C, D])]);
    await gradcheck(([x, w, c]) => headOn(w).tdeLogits(x, { embedMean: c }), [inp([N, D]), inp([C, D]), fixed([D], 0.2, 1)]);
  });

  it('rejects bad sizes and inputs with named errors', () => {
    expect(() => new LinearHead(4, 0)).toThrow(/LinearHead: the class count must be a positive integer, got 0/);
    expect(() => new CosineHead(0, 3)).toThrow(OpError);
    expect(() => new CausalNormHead(5, 3, { numHeads: 2 })).toThrow(/numHeads \(2\) must divide the feature size 5/);
    const head = new LinearHead(4, 3, { device: 'cpu' });
    expect(() => head.forward(tensor(randomArray(10), [2, 5], { device: 'cpu' }))).toThrow(/LinearHead: expects f32 features \[N, 4\], got f32 \[2, 5\]/);
  });
});
