import { describe, expect, it } from 'vitest';
import { hasWebGPU, scope, tensor, type Tensor } from '../../index.node.js';
import { sum, mul } from '../../autograd/ops.js';
import { noGrad } from '../../autograd/tape.js';
import { BGNN, BgnnStep, batchGraph, encodeBoxInfo, frequencyBiasTable, pairSpatialFeatures, rceLoss, relationLoss, PAIR_SPATIAL_DIM, type BgnnInputs } from '../../scene-graph/bgnn.js';
import { gradcheck, inp } from '../autograd/gradcheck.js';
import { randomArray, relErr } from '../helpers.js';

type Mat = Float64Array; // row-major
const H = 5, GW = 3;

// ---------------------------------------------------------------- plain reference (float64 loops)
function linear(x: Mat, rows: number, inDim: number, W: ArrayLike<number>, b: ArrayLike<number>, outDim: number): Mat {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) for (let o = 0; o < outDim; o++) {
    let s = b[o];
    for (let i = 0; i < inDim; i++) s += x[r * inDim + i] * W[o * inDim + i];
    y[r * outDim + o] = s;
  }
  return y;
}
const reluA = (x: Mat): Mat => x.map((v) => Math.max(v, 0));
const sig = (v: number) => 1 / (1 + Math.exp(-v));
function layerNorm(x: Mat, rows: number, d: number, g: ArrayLike<number>, b: ArrayLike<number>): Mat {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = 0; i < d; i++) m += x[r * d + i];
    m /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[r * d + i] - m) ** 2;
    v /= d;
    for (let i = 0; i < d; i++) y[r * d + i] = ((x[r * d + i] - m) / Math.sqrt(v + 1e-5)) * g[i] + b[i];
  }
  return y;
}
type P = Map<string, ArrayLike<number>>;
/** gate of one pair: mean_c σ(W ReLU(LN(u ‖ p)))_c */
function gate(params: P, unit: string, u: ArrayLike<number>, p: ArrayLike<number>): number {
  const cat = new Float64Array(2 * H);
  cat.set(u, 0);
  cat.set(p, H);
  const h = reluA(layerNorm(cat, 1, 2 * H, params.get(`${unit}.norm.weight`)!, params.get(`${unit}.norm.bias`)!));
  const z = linear(h, 1, 2 * H, params.get(`${unit}.w.weight`)!, params.get(`${unit}.w.bias`)!, GW);
  return z.reduce((a, v) => a + sig(v), 0) / GW;
}
function fusion(params: P, name: string, input: Mat, hidden: Mat, rows: number): Mat {
  const a = linear(reluA(input), rows, H, params.get(`${name}.wih.weight`)!, params.get(`${name}.wih.bias`)!, H);
  const b = linear(reluA(hidden), rows, H, params.get(`${name}.whh.weight`)!, params.get(`${name}.whh.bias`)!, H);
  return a.map((v, i) => v + b[i]);
}
function referenceStep(params: P, ent: Mat, rel: Mat, N: number, subj: number[], obj: number[], conf: number[] | null) {
  const R = subj.length;
  const row = (m: Mat, i: number) => m.subarray(i * H, (i + 1) * H);
  const toEntity = (unit: string, idx: number[]): Mat => {
    const acc = new Float64Array(N * H), cnt = new Float64Array(N);
    for (let k = 0; k < R; k++) {
      const c = conf ? conf[k] : 1;
      if (conf && !(c > 1e-4)) continue; // not selected: PySGG keeps only s' > 1e-4
      const g = gate(params, unit, row(ent, idx[k]), row(rel, k)) * c;
      for (let h = 0; h < H; h++) acc[idx[k] * H + h] += g * rel[k * H + h];
      cnt[idx[k]]++;
    }
    for (let n = 0; n < N; n++) if (cnt[n] > 0) for (let h = 0; h < H; h++) acc[n * H + h] /= cnt[n];
    return acc;
  };
  const mS = toEntity('gate_pred2sub', subj), mO = toEntity('gate_pred2obj', obj);
  const mEnt = mS.map((v, i) => (v + mO[i]) / 2);
  const f = fusion(params, 'object_msg_fusion', mEnt, ent, N);
  const entNext = ent.map((v, i) => v + f[i]);
  const mRel = new Float64Array(R * H);
  for (let k = 0; k < R; k++) {
    const gs = gate(params, 'gate_sub2pred', row(rel, k), row(ent, subj[k]));
    const go = gate(params, 'gate_obj2pred', row(rel, k), row(ent, obj[k]));
    for (let h = 0; h < H; h++) mRel[k * H + h] = (gs * ent[subj[k] * H + h] + go * ent[obj[k] * H + h]) / 2;
  }
  const fr = fusion(params, 'pred_msg_fusion', mRel, rel, R);
  return { ent: entNext, rel: rel.map((v, i) => v + fr[i]) };
}

// ---------------------------------------------------------------- helpers
function twin(): { cpu: BgnnStep; gpu: BgnnStep | null; params: P } {
  const cpu = new BgnnStep(H, GW, 'cpu');
  const params: P = new Map();
  for (const [name, p] of cpu.namedParameters()) {
    const v = randomArray(p.size, -0.8, 0.8);
    noGrad(() => (p.cpu as Float64Array).set(v));
    params.set(name, Float64Array.from(p.cpu));
  }
  let gpu: BgnnStep | null = null;
  if (hasWebGPU()) {
    gpu = new BgnnStep(H, GW, 'webgpu');
    const src = new Map(cpu.namedParameters());
    gpu.loadStateDict(new Map([...src].map(([n, p]) => [n, tensor(p.cpu, [...p.shape], { device: 'webgpu' })])));
  }
  return { cpu, gpu, params };
}

// three graphs: A (4 entities, entity 3 isolated), B (a single entity, no pairs), C (3 entities)
const GRAPHS = [
  { numEntities: 4, pairs: [0, 1, 1, 0, 2, 1, 0, 2] },
  { numEntities: 1, pairs: [] },
  { numEntities: 3, pairs: [0, 1, 2, 1, 1, 2] },
];

describe('BGNN message passing against a plain reference', () => {
  it('both directions, confidence gating and selection, isolated nodes and a single-node graph, one batch', async () => {
    const { cpu, gpu, params } = twin();
    const N = 8, R = 7;
    const entV = randomArray(N * H), relV = randomArray(R * H);
    const conf = [0.9, 0, 0.35, 1, 0.5, 0, 0.7]; // two pairs unselected (s' = 0)
    const gHost = batchGraph(GRAPHS, 'cpu');
    expect([...gHost.subj.cpu]).toEqual([0, 1, 2, 0, 5, 7, 6]);
    expect([...gHost.obj.cpu]).toEqual([1, 0, 1, 2, 6, 6, 7]);
    const subj = [...gHost.subj.cpu], obj = [...gHost.obj.cpu];
    for (const gated of [true, false]) {
      const ref = referenceStep(params, Float64Array.from(entV), Float64Array.from(relV), N, subj, obj, gated ? conf : null);
      for (const [mod, device] of [[cpu, 'cpu'], [gpu, 'webgpu']] as const) {
        if (!mod) continue;
        const out = scope(() => {
          const g = batchGraph(GRAPHS, device);
          const r = mod.forward(tensor(entV, [N, H], { device }), tensor(relV, [R, H], { device }), g, gated ? tensor(conf, [R, 1], { device }) : undefined);
          return [r.ent, r.rel].map((t) => t);
        });
        const [e, r] = await Promise.all(out.map((t) => t.data()));
        const tol = device === 'cpu' ? 1e-10 : 1e-5;
        expect(relErr(e, ref.ent), `${device} entities, gated ${gated}`).toBeLessThan(tol);
        expect(relErr(r, ref.rel), `${device} predicates, gated ${gated}`).toBeLessThan(tol);
        // the isolated entity (3) and the single-node graph (4) get no message: e + W_ih ReLU(0) + W_hh ReLU(e)
        out.forEach((t) => t.dispose());
      }
    }
    // the isolated entity's update is the fusion of a zero message
    const iso = fusion(params, 'object_msg_fusion', new Float64Array(H), Float64Array.from(entV.subarray(3 * H, 4 * H)), 1);
    const ref = referenceStep(params, Float64Array.from(entV), Float64Array.from(relV), N, subj, obj, conf);
    for (let h = 0; h < H; h++) expect(ref.ent[3 * H + h]).toBeCloseTo(entV[3 * H + h] + iso[h], 10);
  });

  it('a batch of single-node graphs (no pairs at all) runs and passes zero messages', async () => {
    const { cpu, params } = twin();
    const g = batchGraph([{ numEntities: 1, pairs: [] }, { numEntities: 1, pairs: [] }], 'cpu');
    const entV = randomArray(2 * H);
    const out = cpu.forward(tensor(entV, [2, H], { device: 'cpu' }), tensor([], [0, H], { device: 'cpu' }), g);
    const ref = referenceStep(params, Float64Array.from(entV), new Float64Array(0), 2, [], [], null);
    expect(relErr(out.ent.cpu, ref.ent)).toBeLessThan(1e-10);
    expect(out.rel.shape).toEqual([0, H]);
  });

  it('gradients of entities, predicates and confidences match finite differences (and WebGPU the CPU)', async () => {
    const { cpu, gpu } = twin();
    const N = 8, R = 7;
    const { fd, gpu: gErr } = await gradcheck((xs) => {
      const device = xs[0].device;
      const mod = device === 'cpu' ? cpu : gpu!;
      const g = batchGraph(GRAPHS, device);
      const r = mod.forward(xs[0], xs[1], g, xs[2]);
      return concatOut(r.ent, r.rel);
    }, [inp([N, H]), inp([R, H]), inp([R, 1], 0.2, 0.9)], { tol: 1e-5, gpuTol: 1e-3 });
    expect(fd).toBeLessThan(1e-5);
    expect(gErr).toBeLessThan(1e-3);
  });

  it('parameter gradients match finite differences (float64 CPU)', () => {
    const { cpu } = twin();
    const N = 8, R = 7;
    const entV = randomArray(N * H), relV = randomArray(R * H), conf = randomArray(R, 0.2, 0.9);
    const w = randomArray(N * H + R * H, 0.5, 1.5);
    const loss = () => {
      const g = batchGraph(GRAPHS, 'cpu');
      const r = cpu.forward(tensor(entV, [N, H], { device: 'cpu' }), tensor(relV, [R, H], { device: 'cpu' }), g, tensor(conf, [R, 1], { device: 'cpu' }));
      return sum(mul(concatOut(r.ent, r.rel), tensor(w, [N * H + R * H], { device: 'cpu' })));
    };
    cpu.zeroGrad();
    scope(() => loss().backward());
    for (const [name, p] of cpu.namedParameters()) {
      const x = p.cpu as Float64Array;
      const analytic = Float64Array.from(p.grad!.cpu);
      const numeric = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const v = x[i];
        x[i] = v + 1e-6;
        const lp = noGrad(() => scope(() => loss().cpu[0]));
        x[i] = v - 1e-6;
        const lm = noGrad(() => scope(() => loss().cpu[0]));
        x[i] = v;
        numeric[i] = (lp - lm) / 2e-6;
      }
      expect(relErr(analytic, numeric), name).toBeLessThan(1e-5);
    }
  });
});

import { concat, reshape } from '../../autograd/ops.js';
function concatOut(ent: Tensor, rel: Tensor): Tensor {
  return concat([reshape(ent, [ent.size]), reshape(rel, [rel.size])], 0);
}

describe('BGNN model', () => {
  const C = 4, P = 3, V = 6;
  function inputs(device: 'cpu' | 'webgpu', withLabels: boolean): { x: BgnnInputs; labels: number[]; rels: number[] } {
    const graphs = [{ numEntities: 3, pairs: [0, 1, 1, 0, 0, 2, 2, 0, 1, 2, 2, 1] }, { numEntities: 1, pairs: [] }, { numEntities: 2, pairs: [0, 1, 1, 0] }];
    const g = batchGraph(graphs, device);
    const boxes = [0, 0, 10, 10, 5, 5, 20, 20, 30, 0, 40, 8];
    const boxInfo = Float32Array.from([...encodeBoxInfo(boxes, 64, 64), ...encodeBoxInfo([1, 1, 9, 9], 64, 64), ...encodeBoxInfo([0, 0, 9, 9, 9, 9, 30, 30], 64, 64)]);
    const spatial = Float32Array.from([...pairSpatialFeatures(boxes, graphs[0].pairs, 64, 64), ...pairSpatialFeatures([0, 0, 9, 9, 9, 9, 30, 30], graphs[2].pairs, 64, 64)]);
    const labels = [1, 2, 3, 1, 2, 3];
    return {
      x: {
        graph: g,
        entityFeatures: tensor(randomArray(6 * V), [6, V], { device }),
        entityBoxInfo: tensor(boxInfo, [6, 9], { device }),
        unionFeatures: tensor(randomArray(8 * V), [8, V], { device }),
        pairSpatial: tensor(spatial, [8, PAIR_SPATIAL_DIM], { device }),
        entityLabels: withLabels ? tensor(labels, [6], { dtype: 'i32', device }) : undefined,
      },
      labels,
      rels: [1, 0, 2, -1, 0, 3, 1, 0],
    };
  }

  it('PredCls and SGCls forward: shapes, frequency bias, both losses back-propagate into every trained parameter', () => {
    const freq = frequencyBiasTable([{ boxes: [0, 0, 10, 10, 5, 5, 20, 20], labels: [1, 2], relations: [0, 1, 1] }], C, P);
    expect(freq.length).toBe(C * C * (P + 1));
    // (1, 2): one 'p1' relation and one overlapping background pair in each direction (1→2 and 2→1: +1 smoothing)
    const row = Array.from(freq.subarray((1 * C + 2) * (P + 1), (1 * C + 2 + 1) * (P + 1)), Math.exp);
    expect(row[1]).toBeCloseTo(1 / 3 + 1e-3, 5);
    expect(row[0]).toBeCloseTo(2 / 3 + 1e-3, 5);
    for (const sgcls of [false, true]) {
      const model = new BGNN({ numObjClasses: C, numPredicates: P, visualDim: V, hiddenDim: 8, embedDim: 4, geometryDim: 4, gateWidth: 3, refineIters: 2, mpSteps: 2, frequencyBias: freq, device: 'cpu' });
      if (sgcls) model.enableObjectClassifier();
      const { x, labels, rels } = inputs('cpu', !sgcls);
      const out = model.forward(x);
      expect(out.relLogits.shape).toEqual([8, P + 1]);
      expect(out.rceLogits.length).toBe(2);
      expect(out.confidence!.shape).toEqual([8, 1]);
      const s = [0, 1, 0, 2, 1, 2, 4, 5].map((i) => labels[i]), o = [1, 0, 2, 0, 2, 1, 5, 4].map((i) => labels[i]);
      const bias = model.frequencyBias(s, o)!;
      expect(bias.shape).toEqual([8, P + 1]);
      expect(relErr(bias.cpu.subarray(2 * (P + 1), 3 * (P + 1)), freq.subarray((1 * C + 3) * (P + 1), (1 * C + 4) * (P + 1)))).toBeLessThan(1e-7);
      let loss = relationLoss(add(out.relLogits, bias), rels);
      for (const l of out.rceLogits) loss = sumAll(loss, rceLoss(l, rels, P));
      if (sgcls) {
        expect(out.objLogits!.shape).toEqual([6, C]);
        const y = tensor(labels, [6], { dtype: 'i32', device: 'cpu' });
        loss = sumAll(loss, sumAll(crossEntropy(out.objLogits!, y), crossEntropy(out.objLogitsInitial!, y)));
      }
      model.zeroGrad();
      loss.backward();
      const missing = model.namedParameters().filter(([, p]) => !p.grad).map(([n]) => n);
      // every parameter is trained, except (as in PySGG) the last step's entity update in PredCls,
      // whose output no loss reads (predicates are updated from the step's input entities)
      const expected = sgcls ? [] : model.namedParameters().map(([n]) => n).filter((n) => /^steps\.1\.(gate_pred2sub|gate_pred2obj|object_msg_fusion)\./.test(n));
      expect(expected.length).toBe(sgcls ? 0 : 12);
      expect(missing, missing.join(' ')).toEqual(expected);
    }
  });

  it('the baseline (no message passing) has no RCE and no gating', () => {
    const model = new BGNN({ numObjClasses: C, numPredicates: P, visualDim: V, hiddenDim: 8, embedDim: 4, geometryDim: 4, messagePassing: false, device: 'cpu' });
    const out = model.forward(inputs('cpu', true).x);
    expect(out.rceLogits).toEqual([]);
    expect(out.confidence).toBeNull();
    expect(model.namedParameters().some(([n]) => n.startsWith('steps'))).toBe(false);
  });

  it('rceLoss is the normalised sigmoid focal loss; −1 labels are ignored', () => {
    const z = [0.3, -1, 2, 0.5, -0.2, 0.1, 0.4, -2];
    const l = rceLoss(tensor(z, [2, 4], { device: 'cpu' }), [2, -1], 3).cpu[0];
    // row 0: targets [0, 1, 0 | 1]; row 1 ignored; one foreground
    const t = [0, 1, 0, 1];
    let ref = 0;
    for (let j = 0; j < 4; j++) {
      const p = 1 / (1 + Math.exp(-z[j]));
      const ce = -(t[j] * Math.log(p) + (1 - t[j]) * Math.log(1 - p));
      const pt = t[j] ? p : 1 - p;
      ref += (t[j] ? 0.2 : 0.8) * (1 - pt) ** 2 * ce;
    }
    expect(l).toBeCloseTo(ref, 10);
  });
});

import { add } from '../../autograd/ops.js';
import { crossEntropy } from '../../longtail/losses.js';
const sumAll = (a: Tensor, b: Tensor) => add(a, b);
