// The long-tail box-classification strategies wired into Mask R-CNN (MaskRCNNOptions.boxClassification):
// the model's loss_classifier is the standalone function's on the same logits, a training step runs
// with each, inference scores are the method's own, and DisAlign's stage 2 leaves the detector as it was.
import { describe, expect, it } from 'vitest';
import {
  DataRng, SGD, detectionBatch, manualSeed, scopeAsync, tensor, totalLoss, type MaskRCNNOptions, type Tensor,
} from '../../index.node.js';
import {
  bagsLoss, bagsScores, CosineBoxClassifier, eqlBoxLoss, grwBoxLoss, grwBoxWeights, logitAdjustBoxLogits, priorBias, sigmoidBoxScores, sigmoidFocalBoxLoss, tauNormBoxLogits,
} from '../../detection/longtail.js';
import { crossEntropyMean } from '../../detection/training.js';
import { softmax } from '../../autograd/ops.js';
import { Rng, STREAMS } from '../../data/rng.js';
import { Linear } from '../../nn/layers.js';
import { randomArray, relErr } from '../helpers.js';
import { C, dev, sample, tiny, values } from './tiny-mask-rcnn.js';

const counts = [200, 40, 5, 1];
const frequencies = [0.5, 0.1, 0.001, 0.0005];
const STRATEGIES: Record<string, NonNullable<MaskRCNNOptions['boxClassification']>> = {
  softmax: {},
  eql: { loss: 'eql', frequencies, eqlLambda: 0.00177 },
  focal: { loss: 'focal' },
  bags: { loss: 'bags', instanceCounts: counts, seed: 3 },
  cosine: { cosine: true },
  disalign: { disalign: true, instanceCounts: counts },
  'tau-norm': { posthoc: { kind: 'tau-norm', tau: 1 } },
  'logit-adjust': { posthoc: { kind: 'logit-adjust', tau: 1 }, instanceCounts: counts },
};


describe('Mask R-CNN box classification strategies', () => {
  const N = 9, D = 16;
  const labels = Int32Array.from([0, 1, 2, 0, 3, 4, 0, 1, 4]);

  it('the baseline keeps torchvision state-dict names; the methods change only cls_score and add roi_heads.disalign', () => {
    const base = [...tiny(undefined).stateDict().keys()];
    expect(base.filter((k) => k.includes('disalign'))).toEqual([]);
    expect([...tiny(STRATEGIES.eql).stateDict().keys()]).toEqual(base);
    const da = [...tiny(STRATEGIES.disalign).stateDict().keys()];
    expect(da.filter((k) => !base.includes(k)).sort()).toEqual(['roi_heads.disalign.confidence_layer.bias', 'roi_heads.disalign.confidence_layer.weight', 'roi_heads.disalign.logit_bias', 'roi_heads.disalign.logit_scale']);
    const cos = tiny(STRATEGIES.cosine);
    expect(cos.roi_heads.box_predictor.cls_score).toBeInstanceOf(CosineBoxClassifier);
    expect([...cos.stateDict().keys()].filter((k) => k.includes('cls_score'))).toEqual(['roi_heads.box_predictor.cls_score.weight', 'roi_heads.box_predictor.cls_score.scale']);
    // BAGS: C + 1 + bins outputs (bins: background, (0, 10), [10, 100), [100, 1000), [1000, ∞))
    expect((tiny(STRATEGIES.bags).roi_heads.box_predictor.cls_score as Linear).weight.shape).toEqual([C + 1 + 5, D]);
  });

  it('EQL and focal start from the prior-probability bias', async () => {
    for (const k of ['eql', 'focal']) {
      const b = await values((tiny(STRATEGIES[k]).roi_heads.box_predictor.cls_score as Linear).bias!);
      for (const v of b) expect(v).toBeCloseTo(priorBias(0.001), 5);
    }
  });

  it('loss_classifier is the standalone function on the same logits', async () => {
    for (const [name, opts] of Object.entries(STRATEGIES)) {
      const model = tiny(opts);
      const heads = model.roi_heads;
      const x = tensor(randomArray(N * D, 0, 1), [N, D], { device: dev() });
      const raw = heads.box_predictor.cls_score.forward(x);
      const ours = await heads.classifierLoss(raw, x, labels).item();
      let ref: Tensor;
      if (name === 'eql') ref = eqlBoxLoss(raw, labels, frequencies, 0.00177);
      else if (name === 'focal') ref = sigmoidFocalBoxLoss(raw, labels);
      else if (name === 'bags') ref = bagsLoss(raw, labels, heads.boxClassification.groups!, new Rng(3, 0, STREAMS.groupSoftmaxOthers), 8);
      else if (name === 'disalign') ref = grwBoxLoss(heads.disalign!.forward(x, raw), labels, grwBoxWeights(counts, 0.8));
      else ref = crossEntropyMean(raw, labels);
      expect(relErr([ours], [await ref.item()]), name).toBeLessThan(1e-6);
    }
  });

  it('inference scores are the method\'s own', async () => {
    for (const [name, opts] of Object.entries(STRATEGIES)) {
      const heads = tiny(opts).eval().roi_heads;
      const x = tensor(randomArray(N * D, 0, 2), [N, D], { device: dev() });
      const raw = heads.box_predictor.cls_score.forward(x);
      const ours = await values(heads.classScores(raw, x));
      let ref: Tensor;
      if (name === 'eql' || name === 'focal') ref = sigmoidBoxScores(raw);
      else if (name === 'bags') ref = bagsScores(raw, heads.boxClassification.groups!);
      else if (name === 'disalign') ref = softmax(heads.disalign!.forward(x, raw));
      else if (name === 'tau-norm') ref = softmax(tauNormBoxLogits(x, heads.box_predictor.cls_score as Linear, 1));
      else if (name === 'logit-adjust') ref = softmax(logitAdjustBoxLogits(raw, counts, 1));
      else ref = softmax(raw);
      expect(relErr(ours, await values(ref)), name).toBeLessThan(1e-5);
      if (name === 'eql') for (let i = 0; i < N; i++) expect(ours[i * (C + 1)]).toBe(0);
    }
  });

  // one test per strategy: together they take minutes on a CPU adapter, and each reports on its own
  for (const [name, opts] of Object.entries(STRATEGIES)) {
    it(`a training step runs with ${name}, and detect() scores with it`, { timeout: 600_000 }, async () => {
      const list = detectionBatch([sample()], { minSize: [48], maxSize: 64, flipProb: 0 }, new DataRng(1));
      manualSeed(2);
      const model = tiny(opts).train();
      const opt = new SGD(model.trainableParameters(), { lr: 0.01, momentum: 0.9 });
      const v = await scopeAsync(async () => {
        const losses = await model.losses(list, new DataRng(4));
        const total = totalLoss(losses);
        total.backward();
        opt.step();
        opt.zeroGrad();
        return losses.loss_classifier.item();
      });
      expect(Number.isFinite(v), name).toBe(true);
      const [det] = await model.eval().detect([sample()]);
      for (const s of det.scores) expect(s > 0 && s <= 1, name).toBe(true);
    });
  }

  it('DisAlign stage 2 trains only its head: the detector\'s weights stay bit-identical', { timeout: 120_000 }, async () => {
    manualSeed(5);
    const model = tiny(STRATEGIES.disalign).train();
    for (const [n, p] of model.namedParameters()) p.requiresGrad = n.startsWith('roi_heads.disalign.');
    const before = new Map<string, Float32Array>();
    for (const [n, t] of model.stateDict()) before.set(n, Float32Array.from(await values(t)));
    const opt = new SGD(model.trainableParameters(), { lr: 0.5, momentum: 0.9 });
    expect(model.trainableParameters().map(([n]) => n).sort()).toEqual(['roi_heads.disalign.confidence_layer.bias', 'roi_heads.disalign.confidence_layer.weight', 'roi_heads.disalign.logit_bias', 'roi_heads.disalign.logit_scale']);
    const list = detectionBatch([sample()], { minSize: [48], maxSize: 64, flipProb: 0 }, new DataRng(1));
    for (let step = 0; step < 3; step++) {
      await scopeAsync(async () => {
        const l = (await model.losses(list, new DataRng(step))).loss_classifier;
        l.backward();
        opt.step();
        opt.zeroGrad();
      });
    }
    let changed = 0;
    for (const [n, t] of model.stateDict()) {
      const now = await values(t);
      if (n.startsWith('roi_heads.disalign.')) changed += now.some((v, i) => v !== before.get(n)![i]) ? 1 : 0;
      else expect(Array.from(now), n).toEqual(Array.from(before.get(n)!));
    }
    expect(changed).toBeGreaterThan(0);
  });
});
