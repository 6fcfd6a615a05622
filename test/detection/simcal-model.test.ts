// SimCal wired into Mask R-CNN (boxClassification.simcal): the calibrated copy of cls_score
// (roi_heads.simcal), its stage 2 on the frozen detector (MaskRCNN.simcalLoss: only the calibrated
// head moves, every detector weight stays bit-identical) and inference with simcalCombine (classes
// under the threshold take the calibrated probability, the others the original).
import { describe, expect, it } from 'vitest';
import {
  DataRng, SGD, detectionBatch, manualSeed, scopeAsync, tensor, type MaskRCNNOptions, type MaskRCNNResult,
} from '../../index.node.js';
import { BoxClassification, simcalCombine, SimcalBoxHead } from '../../detection/longtail.js';
import { softmax } from '../../autograd/ops.js';
import { Linear } from '../../nn/layers.js';
import { randomArray, relErr } from '../helpers.js';
import { C, dev, sample, tiny, values } from './tiny-mask-rcnn.js';

const counts = [200, 40, 5, 1];
const THRESHOLD = 30; // classes 3 and 4 take the calibrated probability
const SIMCAL: NonNullable<MaskRCNNOptions['boxClassification']> = { simcal: true, simcalThreshold: THRESHOLD, instanceCounts: counts };

// every detection kept, so the scores of rare classes are seen too
const build = (boxClassification: MaskRCNNOptions['boxClassification']) => tiny(boxClassification, { boxDetectionsPerImg: 1000 });

describe('SimCal in Mask R-CNN', () => {
  it('adds only roi_heads.simcal.cls_score, which starts as a copy of the trained classifier', async () => {
    const base = [...build(undefined).stateDict().keys()];
    const model = build(SIMCAL);
    expect([...model.stateDict().keys()].filter((k) => !base.includes(k)).sort()).toEqual(['roi_heads.simcal.cls_score.bias', 'roi_heads.simcal.cls_score.weight']);
    const head = model.roi_heads.simcal!;
    const cls = model.roi_heads.box_predictor.cls_score as Linear;
    expect(Array.from(await values(head.cls_score.weight))).not.toEqual(Array.from(await values(cls.weight)));
    head.initFrom(cls);
    expect(Array.from(await values(head.cls_score.weight))).toEqual(Array.from(await values(cls.weight)));
    expect(Array.from(await values(head.cls_score.bias!))).toEqual(Array.from(await values(cls.bias!)));
  });

  it('goes with the plain softmax classifier and needs the instance counts', () => {
    expect(() => new BoxClassification(C, { simcal: true })).toThrow(/instanceCounts/);
    expect(() => new BoxClassification(C, { simcal: true, instanceCounts: counts, loss: 'eql', frequencies: [0.5, 0.1, 0.01, 0.001] })).toThrow(/plain softmax/);
    expect(() => new BoxClassification(C, { simcal: true, instanceCounts: counts, disalign: true })).toThrow(/plain softmax/);
    expect(() => new BoxClassification(C, { simcal: true, instanceCounts: counts, simcalThreshold: 0 })).toThrow(/threshold/);
    expect(() => new SimcalBoxHead(16, C).initFrom(build({ cosine: true }).roi_heads.box_predictor.cls_score)).toThrow(/linear classifier/);
  });

  it('inference scores: classes under the threshold take the calibrated probability, the others the original', async () => {
    const heads = build(SIMCAL).eval().roi_heads;
    const N = 9, D = 16;
    const x = tensor(randomArray(N * D, 0, 2), [N, D], { device: dev() });
    const raw = heads.box_predictor.cls_score.forward(x);
    const ours = await values(heads.classScores(raw, x));
    expect(relErr(ours, await values(simcalCombine(raw, heads.simcal!.forward(x), counts, THRESHOLD)))).toBeLessThan(1e-6);
    const p = await values(softmax(raw)), q = await values(softmax(heads.simcal!.forward(x)));
    for (let i = 0; i < N; i++) {
      for (let k = 0; k <= C; k++) {
        const ref = k >= 1 && counts[k - 1] < THRESHOLD ? q : p;
        expect(Math.abs(ours[i * (C + 1) + k] - ref[i * (C + 1) + k]), `row ${i} class ${k}`).toBeLessThan(1e-6);
      }
    }
  });

  it('stage 2 trains only the calibrated head on bi-level rows: the detector stays bit-identical', { timeout: 300_000 }, async () => {
    manualSeed(5);
    const model = build(SIMCAL).train();
    model.roi_heads.simcal!.initFrom(model.roi_heads.box_predictor.cls_score);
    for (const [n, p] of model.namedParameters()) p.requiresGrad = n.startsWith('roi_heads.simcal.');
    expect(model.trainableParameters().map(([n]) => n).sort()).toEqual(['roi_heads.simcal.cls_score.bias', 'roi_heads.simcal.cls_score.weight']);
    const before = new Map<string, Float32Array>();
    for (const [n, t] of model.stateDict()) before.set(n, Float32Array.from(await values(t)));
    const opt = new SGD(model.trainableParameters(), { lr: 0.5, momentum: 0.9 });
    const list = detectionBatch([sample(), sample()], { minSize: [48], maxSize: 64, flipProb: 0 }, new DataRng(1));
    for (let step = 0; step < 3; step++) {
      // each image drawn for one of its categories (classes 1 and 3)
      const loss = await scopeAsync(async () => {
        const l = await model.simcalLoss(list, [1, 3], new DataRng(step));
        const v = await l.item();
        l.backward();
        opt.step();
        opt.zeroGrad();
        return v;
      });
      expect(Number.isFinite(loss) && loss > 0, `step ${step}: loss ${loss}`).toBe(true);
    }
    let changed = 0;
    for (const [n, t] of model.stateDict()) {
      const now = await values(t);
      if (n.startsWith('roi_heads.simcal.')) changed += now.some((v, i) => v !== before.get(n)![i]) ? 1 : 0;
      else expect(Array.from(now), n).toEqual(Array.from(before.get(n)!));
    }
    expect(changed).toBe(2);
    await expect(model.simcalLoss(list, [1], new DataRng(0))).rejects.toThrow(/1 drawn categories for a batch of 2/);
    await expect(build(undefined).train().simcalLoss(list, [1, 3], new DataRng(0))).rejects.toThrow(/boxClassification.simcal/);
  });

  it('the rows are the drawn category\'s positives and background ROIs, scored by the mean CE', { timeout: 300_000 }, async () => {
    manualSeed(6);
    const model = build(SIMCAL).train();
    const list = detectionBatch([sample()], { minSize: [48], maxSize: 64, flipProb: 0 }, new DataRng(2));
    // a head whose logits are its bias: background and class 3 share the mass, so a row of either costs log 2, any other ≈ 40
    const zeros = tensor(new Float32Array((C + 1) * 16), [C + 1, 16], { device: dev() });
    const bias = tensor(Float32Array.from([20, -20, -20, 20, -20]), [C + 1], { device: dev() });
    model.roi_heads.simcal!.cls_score.loadStateDict(new Map([['weight', zeros], ['bias', bias]]));
    const lossFor = (category: number) => scopeAsync(async () => (await model.simcalLoss(list, [category], new DataRng(0))).item());
    expect(await lossFor(3)).toBeCloseTo(Math.log(2), 4);
    // a class-1 draw: as many background rows (log 2) as class-1 positives (≈ 40 + log 2)
    expect(await lossFor(1)).toBeCloseTo(20 + Math.log(2), 2);
  });

  it('detect() scores with the combination: rare classes follow the calibrated head, the others are unchanged', { timeout: 300_000 }, async () => {
    manualSeed(7);
    const model = build(SIMCAL).eval();
    const head = model.roi_heads.simcal!;
    head.initFrom(model.roi_heads.box_predictor.cls_score);
    const key = (r: MaskRCNNResult, j: number) => `${r.labels[j]} ${r.scores[j]} ${Array.from(r.boxes.subarray(j * 4, j * 4 + 4)).join(',')}`;
    const keys = (r: MaskRCNNResult, keep: (label: number) => boolean) => Array.from(r.labels.keys()).filter((j) => keep(r.labels[j])).map((j) => key(r, j)).sort();
    const image = sample();
    const [same] = await model.detect([image]);
    // the calibrated head now puts (almost) all its mass on class 4 (1 training instance, under the threshold)
    const cls = model.roi_heads.box_predictor.cls_score as Linear;
    const b = Float32Array.from(await values(cls.bias!));
    b[4] += 50;
    head.cls_score.loadStateDict(new Map([['weight', cls.weight], ['bias', tensor(b, [C + 1], { device: dev() })]]));
    const [det] = await model.detect([image]);
    const frequent = (l: number) => counts[l - 1] >= THRESHOLD;
    expect(keys(same, frequent).length).toBeGreaterThan(0);
    expect(keys(det, frequent)).toEqual(keys(same, frequent));
    const rare4 = Array.from(det.labels.keys()).filter((j) => det.labels[j] === 4);
    expect(rare4.length).toBeGreaterThan(0);
    for (const j of rare4) expect(det.scores[j]).toBeGreaterThan(0.99);
    // class 3 (5 instances) takes the calibrated probability too: ~0 now, so below the score threshold
    expect(det.labels.includes(3)).toBe(false);
    expect(same.labels.includes(3)).toBe(true);
  });
});
