import { describe, expect, it } from 'vitest';
import { hasWebGPU, runtime, tensor, type Backend, type Tensor } from '../../index.node.js';
import { AdamW, SGD, weightDecayGroups } from '../../nn/optim.js';
import { randomArray, relErr } from '../helpers.js';

// evaluated inside tests: the backend is chosen in test/setup.ts's beforeAll, after this module loads
const gpu = (): Backend => (hasWebGPU() ? 'webgpu' : 'cpu');

// ---- torch's update equations, written out in float64 (torch/optim/sgd.py and adamw.py, single-tensor path)

type Vec = number[];
interface SGDRef { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean }
/** for each step: d = g + wd·p; buf = d (first step) or μ·buf + (1−τ)·d; d = d + μ·buf (nesterov) or buf; p = p − lr·d */
function torchSGD(p: Vec, grads: Vec[], lrs: number[], h: SGDRef): Vec {
  let buf: Vec | null = null;
  grads.forEach((g, t) => {
    let d = g.map((gi, i) => (h.weightDecay ? gi + h.weightDecay * p[i] : gi));
    if (h.momentum) {
      const prev: Vec | null = buf;
      buf = prev ? prev.map((b, i) => h.momentum * b + (1 - h.dampening) * d[i]) : d.slice();
      const b: Vec = buf;
      d = h.nesterov ? d.map((di, i) => di + h.momentum * b[i]) : b.slice();
    }
    p = p.map((pi, i) => pi - lrs[t] * d[i]);
  });
  return p;
}

interface AdamWRef { betas: [number, number]; eps: number; weightDecay: number; amsgrad: boolean }
/** step t: p = p·(1 − lr·wd); m = m + (1−β1)(g − m); v = β2·v + (1−β2)·g²; v̂ = max(v̂, v); p = p − lr/(1−β1^t) · m / (√v̂/√(1−β2^t) + ε) */
function torchAdamW(p: Vec, grads: Vec[], lrs: number[], h: AdamWRef): Vec {
  const [b1, b2] = h.betas;
  let m = p.map(() => 0), v = p.map(() => 0), vmax = p.map(() => 0);
  grads.forEach((g, k) => {
    const t = k + 1, lr = lrs[k];
    p = p.map((pi) => pi * (1 - lr * h.weightDecay));
    m = m.map((mi, i) => mi + (1 - b1) * (g[i] - mi));
    v = v.map((vi, i) => vi * b2 + (1 - b2) * g[i] * g[i]);
    if (h.amsgrad) vmax = vmax.map((x, i) => Math.max(x, v[i]));
    const vhat = h.amsgrad ? vmax : v;
    const stepSize = lr / (1 - b1 ** t), bc2Sqrt = Math.sqrt(1 - b2 ** t);
    p = p.map((pi, i) => pi - stepSize * (m[i] / (Math.sqrt(vhat[i]) / bc2Sqrt + h.eps)));
  });
  return p;
}

// ---- a tiny set of named parameters, with the same values and gradients on any backend

const SHAPES: Record<string, number[]> = { 'fc1.weight': [4, 3], 'fc1.bias': [4], 'fc2.weight': [2, 4], 'fc2.bias': [2] };
const NAMES = Object.keys(SHAPES);
const numel = (n: string) => SHAPES[n].reduce((a, b) => a * b, 1);
const INIT = Object.fromEntries(NAMES.map((n) => [n, Array.from(randomArray(numel(n)))]));
const STEPS = 4;
const GRADS = Array.from({ length: STEPS }, () => Object.fromEntries(NAMES.map((n) => [n, Array.from(randomArray(numel(n), -2, 2))])));
// the reference starts from the f32 values the tensors hold
const f32 = (a: Vec) => Array.from(Float32Array.from(a));

function makeParams(device: Backend): [string, Tensor][] {
  return NAMES.map((n) => [n, tensor(INIT[n], SHAPES[n], { device }).requireGrad()]);
}

/** Weights and biases in two groups: biases without weight decay and at half the learning rate. */
const groupsOf = (params: [string, Tensor][]) => [
  { params: params.filter(([n]) => n.endsWith('weight')) },
  { params: params.filter(([n]) => n.endsWith('bias')), weightDecay: 0, lrScale: 0.5 },
];

type Trainable = Pick<SGD, 'zeroGrad' | 'setLr' | 'step'>;

/** Runs steps [from, to) with a per-step learning rate, the way a training loop does. */
function train(opt: Trainable, params: [string, Tensor][], lrs: number[], from: number, to: number): void {
  for (let s = from; s < to; s++) {
    opt.zeroGrad();
    for (const [n, p] of params) p.grad = tensor(GRADS[s][n], SHAPES[n], { device: p.device });
    opt.setLr(lrs[s]);
    opt.step();
  }
}

const LRS = [0.1, 0.05, 0.2, 0.01];
const lrsFor = (name: string) => (name.endsWith('bias') ? LRS.map((l) => l * 0.5) : LRS);

describe('optimizers match torch.optim', () => {
  const sgdCases: [string, SGDRef][] = [
    ['momentum and weight decay', { lr: 0, momentum: 0.9, dampening: 0, weightDecay: 5e-3, nesterov: false }],
    ['nesterov', { lr: 0, momentum: 0.9, dampening: 0, weightDecay: 1e-3, nesterov: true }],
    ['dampening', { lr: 0, momentum: 0.8, dampening: 0.25, weightDecay: 0, nesterov: false }],
    ['no momentum', { lr: 0, momentum: 0, dampening: 0, weightDecay: 1e-2, nesterov: false }],
  ];
  for (const [label, h] of sgdCases) {
    it(`SGD (${label}) with param groups: CPU equals torch's equations, WebGPU matches`, async () => {
      for (const device of new Set<Backend>(['cpu', gpu()])) {
        const params = makeParams(device);
        const opt = new SGD(groupsOf(params), { lr: 1, momentum: h.momentum, dampening: h.dampening, weightDecay: h.weightDecay, nesterov: h.nesterov });
        train(opt, params, LRS, 0, STEPS);
        for (const [n, p] of params) {
          const ref = torchSGD(f32(INIT[n]), GRADS.map((g) => g[n]), lrsFor(n), { ...h, weightDecay: n.endsWith('bias') ? 0 : h.weightDecay });
          expect(relErr(await p.data(), ref), `${device} ${n}`).toBeLessThan(device === 'cpu' ? 1e-14 : 1e-6);
        }
      }
    });
  }

  for (const amsgrad of [false, true]) {
    it(`AdamW${amsgrad ? ' (amsgrad)' : ''} with param groups: CPU equals torch's equations, WebGPU matches`, async () => {
      const h: AdamWRef = { betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1, amsgrad };
      for (const device of new Set<Backend>(['cpu', gpu()])) {
        const params = makeParams(device);
        const opt = new AdamW(groupsOf(params), { lr: 1, ...h });
        train(opt, params, LRS, 0, STEPS);
        for (const [n, p] of params) {
          const ref = torchAdamW(f32(INIT[n]), GRADS.map((g) => g[n]), lrsFor(n), { ...h, weightDecay: n.endsWith('bias') ? 0 : h.weightDecay });
          expect(relErr(await p.data(), ref), `${device} ${n}`).toBeLessThan(device === 'cpu' ? 1e-14 : 1e-5);
        }
      }
    });
  }

  it('uses torch defaults: SGD lr 1e-3, AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2', async () => {
    const [[, p]] = makeParams('cpu');
    const opt = new AdamW([p]);
    expect(opt.paramGroups[0]).toMatchObject({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, lrScale: 1 });
    p.grad = tensor(GRADS[0]['fc1.weight'], SHAPES['fc1.weight'], { device: 'cpu' });
    opt.step();
    const ref = torchAdamW(f32(INIT['fc1.weight']), [GRADS[0]['fc1.weight']], [1e-3], { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false });
    expect(relErr(p.cpu, ref)).toBeLessThan(1e-14);
    expect(new SGD([makeParams('cpu')[0][1]]).paramGroups[0]).toMatchObject({ lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false });
  });

  it('skips parameters without a gradient: no update, no state', async () => {
    const params = makeParams(gpu());
    const opt = new AdamW(params, { lr: 0.1 });
    params[0][1].grad = tensor(GRADS[0]['fc1.weight'], SHAPES['fc1.weight'], { device: gpu() });
    opt.step();
    expect(Array.from(await params[1][1].data())).toEqual(f32(INIT['fc1.bias']));
    const sd = opt.stateDict();
    expect([...sd.tensors.keys()]).toEqual(['state.fc1.weight.exp_avg', 'state.fc1.weight.exp_avg_sq']);
    expect(sd.scalars.steps).toEqual({ 'fc1.weight': 1 });
  });

  it('records one dispatch per parameter and submits nothing: no readback inside step()', () => {
    const params = makeParams(gpu());
    const opt = new SGD(params, { lr: 0.1, momentum: 0.9 });
    for (const [n, p] of params) p.grad = tensor(GRADS[0][n], SHAPES[n], { device: gpu() });
    runtime().flush();
    const before = runtime().submits;
    opt.step();
    opt.setLr(0.05);
    opt.step();
    expect(runtime().submits).toBe(before);
  });

  it('names its state after the parameters, and unnamed parameters by their index across groups', () => {
    const params = makeParams('cpu');
    const named = new SGD(params, { momentum: 0.9 });
    for (const [n, p] of params) p.grad = tensor(GRADS[0][n], SHAPES[n], { device: 'cpu' });
    named.step();
    expect([...named.stateDict().tensors.keys()]).toEqual(NAMES.map((n) => `state.${n}.momentum_buffer`));
    const unnamed = new AdamW([{ params: [params[0][1], params[1][1]] }, { params: [params[2][1]], lr: 0.5 }]);
    unnamed.step();
    const sd = unnamed.stateDict();
    expect(sd.scalars.paramGroups.map((g) => g.params)).toEqual([['0', '1'], ['2']]);
    expect(sd.scalars.paramGroups[1]).toMatchObject({ lr: 0.5, weightDecay: 1e-2 });
    expect([...sd.tensors.keys()].filter((k) => k.endsWith('.exp_avg'))).toEqual(['state.0.exp_avg', 'state.1.exp_avg', 'state.2.exp_avg']);
  });

  it('loadStateDict resumes exactly: k steps, save, m steps equals k steps, load into a fresh optimizer, m steps', async () => {
    for (const make of [(ps: [string, Tensor][]) => new SGD(groupsOf(ps), { lr: 1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }), (ps: [string, Tensor][]) => new AdamW(groupsOf(ps), { lr: 1, amsgrad: true })]) {
      const a = makeParams(gpu());
      const optA = make(a);
      train(optA, a, LRS, 0, 2);
      // a snapshot of the state on the CPU, as a checkpoint file would hold it
      const snapshot = optA.stateDict();
      const saved = { scalars: structuredClone(snapshot.scalars), tensors: new Map(await Promise.all([...snapshot.tensors].map(async ([k, t]) => [k, tensor(await t.data(), t.shape, { device: 'cpu' })] as [string, Tensor]))) };
      const paramsAt2 = await Promise.all(a.map(([, p]) => p.data()));
      train(optA, a, LRS, 2, STEPS);

      // a fresh model holding the parameters of step 2, and a fresh optimizer
      const b: [string, Tensor][] = a.map(([n], i) => [n, tensor(paramsAt2[i], SHAPES[n], { device: gpu() }).requireGrad()]);
      const optB = make(b);
      optB.loadStateDict(saved);
      expect(optB.paramGroups.map((g) => g.lr)).toEqual([LRS[1], LRS[1] * 0.5]);
      train(optB, b, LRS, 2, STEPS);
      for (let i = 0; i < a.length; i++) {
        expect(new Uint32Array(new Float32Array(await b[i][1].data()).buffer), a[i][0]).toEqual(new Uint32Array(new Float32Array(await a[i][1].data()).buffer));
      }
    }
  });

  it('loadStateDict rejects a state dict that does not fit, naming the parameter, and changes nothing', async () => {
    const params = makeParams('cpu');
    const opt = new AdamW(groupsOf(params));
    train(opt, params, LRS, 0, 1);
    const good = opt.stateDict();
    const before = Array.from(good.tensors.get('state.fc1.weight.exp_avg')!.cpu);
    const withTensors = (edit: (m: Map<string, Tensor>) => void) => {
      const m = new Map(good.tensors);
      edit(m);
      return { tensors: m, scalars: good.scalars };
    };
    expect(() => new SGD(groupsOf(makeParams('cpu'))).loadStateDict(good)).toThrow(/the state dict is from AdamW/);
    expect(() => opt.loadStateDict(withTensors((m) => m.set('state.fc3.weight.exp_avg', tensor([1], [1], { device: 'cpu' }))))).toThrow(/unexpected state 'state.fc3.weight.exp_avg'/);
    expect(() => opt.loadStateDict(withTensors((m) => m.set('state.fc1.bias.exp_avg', tensor([1, 2], [2], { device: 'cpu' }))))).toThrow(/'state.fc1.bias.exp_avg' must be a live f32 tensor of shape \[4\], got f32 \[2\]/);
    expect(() => opt.loadStateDict(withTensors((m) => m.delete('state.fc2.bias.exp_avg_sq')))).toThrow(/parameter 'fc2.bias' has state \[exp_avg\] and a step count, expected \[exp_avg,exp_avg_sq\] and a step count/);
    const noSteps = structuredClone(good.scalars);
    delete noSteps.steps['fc1.bias'];
    expect(() => opt.loadStateDict({ tensors: good.tensors, scalars: noSteps })).toThrow(/parameter 'fc1.bias' has state \[exp_avg,exp_avg_sq\], expected \[exp_avg,exp_avg_sq\] and a step count/);
    const renamed = structuredClone(good.scalars);
    renamed.paramGroups[0].params[0] = 'conv1.weight';
    expect(() => opt.loadStateDict({ tensors: good.tensors, scalars: renamed })).toThrow(/group 0 holds other parameters: missing \["fc1.weight"\], unexpected \["conv1.weight"\]/);
    const badHyper = structuredClone(good.scalars);
    badHyper.paramGroups[1].betas = 0.9;
    expect(() => opt.loadStateDict({ tensors: good.tensors, scalars: badHyper })).toThrow(/group 1: 'betas' is 0.9/);
    expect(Array.from(opt.stateDict().tensors.get('state.fc1.weight.exp_avg')!.cpu)).toEqual(before);
  });

  it('weightDecayGroups exempts rank <= 1 tensors (biases, BatchNorm) from weight decay, or those a predicate picks', () => {
    const params = makeParams('cpu');
    const opt = new SGD(weightDecayGroups(params, 5e-4), { lr: 0.1, weightDecay: 1 });
    expect(opt.paramGroups.map((g) => [g.weightDecay, g.params.map(([n]) => n)])).toEqual([[5e-4, ['fc1.weight', 'fc2.weight']], [0, ['fc1.bias', 'fc2.bias']]]);
    const [decay, none] = weightDecayGroups(params, 1e-4, (name) => name.startsWith('fc2'));
    expect([decay.params.map(([n]) => n), none.params.map(([n]) => n)]).toEqual([['fc1.weight', 'fc1.bias'], ['fc2.weight', 'fc2.bias']]);
  });

  it('rejects bad construction: no parameters, a parameter twice, a non-leaf, nesterov with dampening', () => {
    const params = makeParams('cpu');
    expect(() => new SGD([])).toThrow(/SGD: got an empty parameter list/);
    expect(() => new SGD([{ params: [params[0][1]] }, { params: [params[0][1]] }])).toThrow(/appears in more than one place/);
    expect(() => new SGD([tensor([1], [1], { device: 'cpu' })])).toThrow(/is not a leaf that requires grad/);
    expect(() => new SGD(params, { momentum: 0.9, dampening: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum and zero dampening/);
    expect(() => new AdamW(params, { betas: [1, 0.9] })).toThrow(/betas must lie in \[0, 1\)/);
    expect(() => new SGD(params).setLr(NaN)).toThrow(/invalid learning rate NaN/);
  });
});
