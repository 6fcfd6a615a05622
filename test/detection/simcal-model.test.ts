// SimCal wired into Mask R-CNN (boxClassification.simcal): the calibrated copy of cls_score
// (roi_heads.simcal), its stage 2 on the frozen detector (MaskRCNN.simcalLoss: only the calibrated
// head moves, every detector weight stays bit-identical) and inference with simcalCombine (classes
// under the threshold take the calibrated probability, the others the original).
import { describe, expect, it } from 'vitest';
import {
  DataRng, SGD, detectionBatch, hasWebGPU, manualSeed, maskrcnnResnetFpn, scopeAsync, tensor, type DetectionSample, type MaskRCNNOptions, type MaskRCNNResult, type Tensor,
} from '../../index.node.js';
import { BoxClassification, simcalCombine, SimcalBoxHead } from '../../detection/longtail.js';
import { softmax } from '../../autograd/ops.js';
import { Linear } from '../../nn/layers.js';
import { randomArray, relErr } from '../helpers.js';

const dev = (): 'cpu' | 'webgpu' => (hasWebGPU() ? 'webgpu' : 'cpu');
const C = 4; // foreground classes
const counts = [200, 40, 5, 1];
const THRESHOLD = 30; // classes 3 and 4 take the calibrated probability
const SIMCAL: NonNullable<MaskRCNNOptions['boxClassification']> = { simcal: true, simcalThreshold: THRESHOLD, instanceCounts: counts };

const tiny = (boxClassification: MaskRCNNOptions['boxClassification']) => maskrcnnResnetFpn({ block: 'basic', layers: [1, 1, 1, 1] }, {
  outChannels: 8, numClasses: C + 1, representationSize: 16, maskLayers: [8], maskDimReduced: 8, minSize: 48, maxSize: 64,
  rpnPreNmsTopNTrain: 100, rpnPostNmsTopNTrain: 50, rpnPreNmsTopNTest: 100, rpnPostNmsTopNTest: 50, rpnBatchSizePerImage: 32, boxBatchSizePerImage: 32,
  boxDetectionsPerImg: 1000, trainableLayers: 5, boxClassification, device: dev(),
});

function sample(): DetectionSample {
  const H = 48, W = 64;
  const image = Float32Array.from(randomArray(3 * H * W), (v) => 0.5 + 0.2 * v);
  const rects = [[4, 6, 30, 40, 1], [34, 10, 60, 30, 3]];
  const masks = new Uint8Array(rects.length * H * W);
  rects.forEach(([x1, y1, x2, y2], k) => { for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) masks[k * H * W + y * W + x] = 1; });
  return { image, channels: 3, height: H, width: W, originalSize: [H, W], target: { boxes: Float32Array.from(rects.flatMap((r) => r.slice(0, 4))), labels: Int32Array.from(rects, (r) => r[4]), masks } };
}

const values = async (t: Tensor): Promise<Float32Array> => (await t.data()) as Float32Array;

describe('SimCal in Mask R-CNN', () => {
  it('adds only roi_heads.simcal.cls_score, which starts as a copy of the trained classifier', async () => {
    const base = [...tiny(undefined).stateDict().keys()];
    const model = tiny(SIMCAL);
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
    expect(() => new SimcalBoxHead(16, C).initFrom(tiny({ cosine: true }).roi_heads.box_predictor.cls_score)).toThrow(/linear classifier/);
  });

  it('inference scores: classes under the threshold take the calibrated probability, the others the original', async () => {
    const heads = tiny(SIMCAL).eval().roi_heads;
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
    const model = tiny(SIMCAL).train();
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
    await expect(tiny(undefined).train().simcalLoss(list, [1, 3], new DataRng(0))).rejects.toThrow(/boxClassification.simcal/);
  });

  it('the rows are the drawn category\'s positives and background ROIs, scored by the mean CE', { timeout: 300_000 }, async () => {
    manualSeed(6);
    const model = tiny(SIMCAL).train();
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
    const model = tiny(SIMCAL).eval();
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
