import { describe, expect, it } from 'vitest';
import {
  confusionMatrix,
  evaluateLongTail,
  formatPercent,
  macroF1,
  perClassAccuracy,
  predictions,
  reliability,
  resultsTableMarkdown,
  resultsTableText,
  shotAccuracy,
  shotSplits,
  topKAccuracy,
} from '../../longtail/index.js';

// 4 samples × 6 classes. Ranks of the true class: sample 0 → 0, sample 1 → 2, sample 2 → 5, sample 3 → 4.
const SCORES = Float32Array.from([
  0.9, 0.1, 0.0, 0.0, 0.0, 0.0, // label 0, top-1
  0.5, 0.4, 0.3, 0.2, 0.1, 0.0, // label 2, third
  0.6, 0.5, 0.4, 0.3, 0.2, 0.1, // label 5, last
  1.0, 0.35, 0.3, 0.4, 0.5, 0.6, // label 1, fifth
]);
const LABELS = [0, 2, 5, 1];

describe('top-k accuracy', () => {
  it('counts the label among the k highest scores', () => {
    expect(topKAccuracy(SCORES, LABELS, 6, 1)).toBe(0.25);
    expect(topKAccuracy(SCORES, LABELS, 6, 3)).toBe(0.5);
    expect(topKAccuracy(SCORES, LABELS, 6, 5)).toBe(0.75);
    expect(topKAccuracy(SCORES, LABELS, 6, 6)).toBe(1);
  });

  it('resolves ties by class index, as argmax does', () => {
    const flat = new Float32Array(8).fill(0.5);
    expect(topKAccuracy(flat, [0, 3], 4, 1)).toBe(0.5);
    expect(topKAccuracy(flat, [0, 3], 4, 3)).toBe(0.5);
    expect(topKAccuracy(flat, [0, 3], 4, 4)).toBe(1);
    expect(Array.from(predictions(flat, 4))).toEqual([0, 0]);
    expect(Array.from(predictions(SCORES, 6))).toEqual([0, 0, 0, 0]);
  });

  it('names the function and the problem for bad inputs', () => {
    expect(() => topKAccuracy(SCORES, LABELS, 5, 1)).toThrow(/topKAccuracy: scores hold 24 values, expected 4 samples × 5 classes/);
    expect(() => topKAccuracy(SCORES, [0, 2, 6, 1], 6, 1)).toThrow(/topKAccuracy: label 6 at index 2 is outside the 6 classes/);
    expect(() => topKAccuracy(SCORES, LABELS, 6, 7)).toThrow(/k must be an integer in \[1, 6\], got 7/);
    const nan = SCORES.slice();
    nan[13] = NaN;
    expect(() => topKAccuracy(nan, LABELS, 6, 1)).toThrow(/topKAccuracy: score of sample 2, class 1 is NaN/);
  });
});

describe('per-class and split accuracy', () => {
  it('per-class accuracy, NaN for a class without test samples', () => {
    const acc = perClassAccuracy([0, 1, 1, 2, 0], [0, 1, 0, 2, 0], 4);
    expect(Array.from(acc.subarray(0, 3))).toEqual([2 / 3, 1, 1]);
    expect(acc[3]).toBeNaN();
  });

  it('many (> 100) / medium (20–100) / few (< 20) by training count', () => {
    expect(shotSplits([500, 101, 100, 20, 19, 1])).toEqual(['many', 'many', 'medium', 'medium', 'few', 'few']);
    expect(shotSplits([50, 10], { manyAbove: 40, fewBelow: 5 })).toEqual(['many', 'medium']);
  });

  it('split accuracy is the mean of per-class accuracies, skipping classes absent from the test set', () => {
    const acc = [0.9, 0.7, 0.5, NaN, 0.2, 0.0];
    const shot = shotAccuracy(acc, [500, 101, 100, 20, 19, 1]);
    expect(shot.many).toBeCloseTo(0.8, 15);
    expect(shot.medium).toBe(0.5);
    expect(shot.few).toBe(0.1);
    expect(shotAccuracy([0.5], [1000]).few).toBeNaN();
  });
});

describe('confusion matrix and macro-F1', () => {
  const labels = [0, 0, 1, 1, 2];
  const predicted = [0, 1, 1, 1, 0];

  it('rows are true classes, columns predictions', () => {
    expect(Array.from(confusionMatrix(predicted, labels, 3))).toEqual([1, 1, 0, 0, 2, 0, 1, 0, 0]);
  });

  it('macro-F1 averages 2TP/(2TP+FP+FN) over classes seen as label or prediction', () => {
    // F1: class 0 = 2/4, class 1 = 4/5, class 2 = 0; class 3 never occurs and is left out.
    expect(macroF1(predicted, labels, 3)).toBeCloseTo((0.5 + 0.8 + 0) / 3, 15);
    expect(macroF1(predicted, labels, 4)).toBeCloseTo((0.5 + 0.8 + 0) / 3, 15);
    expect(() => macroF1([0, 5], [0, 1], 3)).toThrow(/confusionMatrix: prediction 5 at index 1 is outside the 3 classes/);
  });
});

describe('evaluation and the results table', () => {
  it('evaluateLongTail combines top-1, top-5, splits, macro-F1 and per-class accuracy', () => {
    const trainCounts = [300, 150, 50, 40, 10, 5];
    const r = evaluateLongTail(SCORES, LABELS, trainCounts);
    expect(r.top1).toBe(0.25);
    expect(r.top5).toBe(0.75);
    // Test classes: 0 (many, correct), 1 (many, wrong), 2 (medium, wrong), 5 (few, wrong).
    expect(r.many).toBe(0.5);
    expect(r.medium).toBe(0);
    expect(r.few).toBe(0);
    expect(r.perClass[3]).toBeNaN();
    // All predictions are class 0: F1_0 = 2/(2+3) and four classes with F1 = 0.
    expect(r.macroF1).toBeCloseTo(0.4 / 4, 15);
    expect(evaluateLongTail(new Float32Array([0.2, 0.8]), [1], [5, 5]).top5).toBeNaN();
    expect(() => evaluateLongTail(new Float32Array([0.2, NaN]), [1], [5, 5])).toThrow(/evaluateLongTail: score of sample 0, class 1 is NaN/);
    expect(() => evaluateLongTail(SCORES, LABELS, [300, 150, 50])).toThrow(/evaluateLongTail: scores hold 24 values, expected 4 samples × 3 classes/);
  });

  const rows = [
    { method: 'Baseline', average: 0.416, many: 0.64, medium: 0.338, few: 0.058 },
    { method: 'DisAlign', average: 0.5134, many: 0.5986, medium: 0.4994, few: 0.3176 },
    { method: 'Logit Adjust(post)', average: 0.504, many: NaN, medium: NaN, few: NaN },
  ];

  it('formats one-decimal percentages and "-" for missing values', () => {
    expect(formatPercent(0.5134)).toBe('51.3');
    expect(formatPercent(1)).toBe('100.0');
    expect(formatPercent(NaN)).toBe('-');
  });

  it('renders the seed talk table as Markdown', () => {
    expect(resultsTableMarkdown(rows)).toBe(
      '| Method | Average | Many | Medium | Few |\n' +
        '| --- | ---: | ---: | ---: | ---: |\n' +
        '| Baseline | 41.6 | 64.0 | 33.8 | 5.8 |\n' +
        '| DisAlign | 51.3 | 59.9 | 49.9 | 31.8 |\n' +
        '| Logit Adjust(post) | 50.4 | - | - | - |\n',
    );
  });

  it('renders the same table as aligned plain text', () => {
    expect(resultsTableText(rows)).toBe(
      'Method              Average  Many  Medium   Few\n' +
        'Baseline               41.6  64.0    33.8   5.8\n' +
        'DisAlign               51.3  59.9    49.9  31.8\n' +
        'Logit Adjust(post)     50.4     -       -     -\n',
    );
  });
});

describe('reliability diagram and ECE', () => {
  it('bins by top-1 softmax confidence and weighs |accuracy − confidence| by bin size (hand-computed)', () => {
    // 2 classes; logits (ln 3, 0) give p = 0.75, (0, 0) gives 0.5 (argmax: class 0), (ln 9, 0) gives 0.9
    const l3 = Math.log(3), l9 = Math.log(9);
    const scores = Float64Array.from([l3, 0, l3, 0, 0, 0, l9, 0]);
    const labels = [0, 1, 0, 0];
    const { bins, ece } = reliability(scores, labels, 2, 5); // [0, .2) [.2, .4) [.4, .6) [.6, .8) [.8, 1]
    expect(bins.map((b) => b.count)).toEqual([0, 0, 1, 2, 1]);
    expect(bins[2].confidence).toBeCloseTo(0.5, 12);
    expect(bins[2].accuracy).toBe(1);
    expect(bins[3].confidence).toBeCloseTo(0.75, 12);
    expect(bins[3].accuracy).toBe(0.5);
    expect(bins[4].confidence).toBeCloseTo(0.9, 12);
    expect(Number.isNaN(bins[0].confidence)).toBe(true);
    // ECE = 1/4·|1 − 0.5| + 2/4·|0.5 − 0.75| + 1/4·|1 − 0.9|
    expect(ece).toBeCloseTo(0.275, 12);
  });

  it('a confidence of exactly 1 falls in the last bin; bad bins and NaN scores are named', () => {
    const { bins } = reliability(Float64Array.from([1000, 0]), [0], 2, 10);
    expect(bins[9].count).toBe(1);
    expect(() => reliability(Float64Array.from([0, 0]), [0], 2, 0)).toThrow(/reliability: bins must be a positive integer, got 0/);
    expect(() => reliability(Float64Array.from([NaN, 0]), [0], 2)).toThrow(/reliability: score of sample 0, class 0 is NaN/);
  });
});
