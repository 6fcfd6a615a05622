// The long-tail lab's computations (demo/lab-core.ts): the features file that `--export-features`
// writes parses, its numbers equal the library's own calibrate + evaluateLongTail, and a bad file
// gets one line naming the file and the tensor.
import { describe, expect, it } from 'vitest';
import { scope, tensor } from '../../index.node.js';
import { encodeSafetensors } from '../../nn/safetensors.js';
import { calibrate, CosineHead, LinearHead } from '../../longtail/calibration.js';
import { evaluateLongTail } from '../../longtail/metrics.js';
import { exportFeatures } from '../../tasks/lib/pipeline.js';
import { DEFAULT_PARAMS, evaluateHead, parseFeaturesFile, runCalibration, stage1Head, trainTensor } from '../../demo/lab-core.js';

/** A small long-tailed set: 4 classes of 40, 20, 6, 3 samples in 6-d, Gaussian clusters; 5 test samples a class. */
function cached(seed: number, perClass: number[]) {
  let s = seed;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const D = 6, feats: number[] = [], labels: number[] = [];
  perClass.forEach((n, c) => {
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < D; d++) feats.push((d === c ? 2 : 0) + (u() - 0.5));
      labels.push(c);
    }
  });
  return { features: Float32Array.from(feats), labels: Int32Array.from(labels), dim: D };
}

describe('lab-core', () => {
  const counts = [40, 20, 6, 3];
  const train = cached(1, counts), test = cached(2, [5, 5, 5, 5]);

  it('reads what --export-features writes, and its numbers are the library API\'s', async () => {
    const head = new LinearHead(6, 4);
    const file = await exportFeatures(train, test, counts, head);
    const data = parseFeaturesFile(file, 'features.safetensors');
    expect([data.dim, data.numClasses, data.train.labels.length, data.test.labels.length, data.testIsTrain]).toEqual([6, 4, 69, 20, false]);
    expect(Array.from(data.counts)).toEqual(counts);
    expect(data.weight).toEqual(Float32Array.from(await head.fc.weight.data()));
    const features = trainTensor(data);
    const { head: loaded, trained } = await stage1Head(data, features);
    expect(trained).toBe(false);
    const stage1 = await evaluateHead(data, loaded);
    const lab = await runCalibration(data, features, loaded, 'logitadjust', { ...DEFAULT_PARAMS, lambda: 0.7 });
    // the same through the library directly
    const direct = await calibrate('logitadjust', { trainFeatures: features, trainLabels: train.labels, classCounts: counts, head, options: { lambda: 0.7 } });
    const scores = scope(() => direct(tensor(test.features, [20, 6])));
    const want = evaluateLongTail(Float32Array.from(await scores.data()), test.labels, counts);
    scores.dispose();
    expect(lab.evaluation.top1).toBe(want.top1);
    expect([lab.evaluation.many, lab.evaluation.medium, lab.evaluation.few]).toEqual([want.many, want.medium, want.few]);
    expect(stage1.evaluation.perClass).toHaveLength(4);
    expect(lab.reliability.bins).toHaveLength(15);
    features.dispose();
  });

  it('trains a linear head when the file has no linear classifier (none, or a cosine head\'s weight)', async () => {
    const file = await exportFeatures(train, test, counts, new CosineHead(6, 4));
    const data = parseFeaturesFile(file, 'cos.safetensors');
    expect(data.weight).toBeUndefined();
    expect(data.headNote).toMatch(/CosineHead/);
    const features = trainTensor(data);
    const { trained } = await stage1Head(data, features);
    expect(trained).toBe(true);
    features.dispose();
  });

  it('names the file and the tensor for a bad file', () => {
    type Entry = Parameters<typeof encodeSafetensors>[0][number];
    const f = (tensors: Entry[]) => encodeSafetensors(tensors);
    const feats: Entry = ['features', { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) }];
    const labels = (v: number[]): Entry => ['labels', { dtype: 'I32', shape: [v.length], data: Int32Array.from(v) }];
    const countsT = (v: number[]): Entry => ['counts', { dtype: 'I32', shape: [v.length], data: Int32Array.from(v) }];
    expect(() => parseFeaturesFile(new TextEncoder().encode('hello'), 'a.txt')).toThrow(/^a\.txt: not a safetensors file/);
    expect(() => parseFeaturesFile(f([feats, labels([0, 1])]), 'b.st')).toThrow(/^b\.st: has no tensor 'counts'/);
    expect(() => parseFeaturesFile(f([feats, labels([0, 2]), countsT([1, 1])]), 'c.st')).toThrow(/^c\.st: 'labels'\[1\] = 2 is outside the 2 classes/);
    expect(() => parseFeaturesFile(f([feats, labels([0]), countsT([1, 1])]), 'd.st')).toThrow(/^d\.st: 'labels' has 1 entries for 2 feature rows/);
    expect(() => parseFeaturesFile(f([feats, labels([0, 1]), countsT([1, 0])]), 'e.st')).toThrow(/^e\.st: 'counts'\[1\] = 0/);
    expect(() => parseFeaturesFile(f([feats, labels([0, 1]), countsT([1, 1]), ['weight', { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) }]]), 'g.st')).toThrow(/^g\.st: 'weight' is \[2, 2\], the classifier of 2 classes on 3-d features is \[2, 3\]/);
    expect(() => parseFeaturesFile(f([['features', { dtype: 'I32', shape: [2, 3], data: new Int32Array(6) }], labels([0, 1]), countsT([1, 1])]), 'h.st')).toThrow(/^h\.st: tensor 'features' must be a 2-D float tensor, got I32 \[2, 3\]/);
  });
});
