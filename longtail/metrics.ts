// Long-tail classification metrics: top-k, per-class accuracy, the many/medium/few split accuracy
// reported by Decoupling/OLTR, macro-F1, the confusion matrix, and the results table of the seed
// talk. Scores are row-major N×C arrays read back from the device.
import { check } from '../kernels/errors.js';

type Scores = Float32Array | Float64Array;

function checkScores(op: string, scores: Scores, labels: ArrayLike<number>, numClasses: number): void {
  check(Number.isSafeInteger(numClasses) && numClasses > 0, op, `numClasses must be a positive integer, got ${numClasses}`);
  check(labels.length > 0, op, 'no samples to evaluate');
  check(scores.length === labels.length * numClasses, op, `scores hold ${scores.length} values, expected ${labels.length} samples × ${numClasses} classes`);
  for (let i = 0; i < scores.length; i++) {
    check(!Number.isNaN(scores[i]), op, `score of sample ${Math.floor(i / numClasses)}, class ${i % numClasses} is NaN`);
  }
  checkLabelRange(op, labels, numClasses, 'label');
}

function checkLabelRange(op: string, labels: ArrayLike<number>, numClasses: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    check(Number.isInteger(y) && y >= 0 && y < numClasses, op, `${what} ${y} at index ${i} is outside the ${numClasses} classes`);
  }
}

/**
 * Rank of the true class in its row: classes scoring strictly higher, plus equal-scoring classes
 * with a lower index (ties resolve as a stable descending sort, so top-1 agrees with argmax).
 */
function rankOfLabel(scores: Scores, row: number, numClasses: number, y: number): number {
  const base = row * numClasses;
  const s = scores[base + y];
  let rank = 0;
  for (let j = 0; j < numClasses; j++) {
    const v = scores[base + j];
    if (v > s || (v === s && j < y)) rank++;
  }
  return rank;
}

/** Share of samples whose label is among the k highest scores. */
export function topKAccuracy(scores: Scores, labels: ArrayLike<number>, numClasses: number, k: number): number {
  checkScores('topKAccuracy', scores, labels, numClasses);
  check(Number.isSafeInteger(k) && k >= 1 && k <= numClasses, 'topKAccuracy', `k must be an integer in [1, ${numClasses}], got ${k}`);
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (rankOfLabel(scores, i, numClasses, labels[i]) < k) hits++;
  return hits / labels.length;
}

/** Argmax per row (the first of equal maxima). */
export function predictions(scores: Scores, numClasses: number): Int32Array {
  check(Number.isSafeInteger(numClasses) && numClasses > 0 && scores.length % numClasses === 0, 'predictions', `${scores.length} scores do not split into rows of ${numClasses} classes`);
  const out = new Int32Array(scores.length / numClasses);
  for (let i = 0; i < out.length; i++) {
    let best = 0;
    for (let j = 1; j < numClasses; j++) if (scores[i * numClasses + j] > scores[i * numClasses + best]) best = j;
    out[i] = best;
  }
  return out;
}

/** Per class: correct top-1 predictions / test samples of that class; NaN for a class without test samples. */
export function perClassAccuracy(predicted: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): Float64Array {
  check(predicted.length === labels.length, 'perClassAccuracy', `${predicted.length} predictions for ${labels.length} labels`);
  checkLabelRange('perClassAccuracy', labels, numClasses, 'label');
  checkLabelRange('perClassAccuracy', predicted, numClasses, 'prediction');
  const correct = new Float64Array(numClasses);
  const total = new Float64Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    total[labels[i]]++;
    if (predicted[i] === labels[i]) correct[labels[i]]++;
  }
  return correct.map((c, j) => (total[j] > 0 ? c / total[j] : NaN));
}

export type ShotSplit = 'many' | 'medium' | 'few';

/** Shot thresholds on training-set class counts: many > manyAbove, few < fewBelow, medium otherwise. */
export interface ShotThresholds {
  manyAbove?: number;
  fewBelow?: number;
}

/** Each class's split by its training count: many (> 100), medium (20–100), few (< 20) (Liu et al., OLTR, CVPR 2019). */
export function shotSplits(trainCounts: ArrayLike<number>, { manyAbove = 100, fewBelow = 20 }: ShotThresholds = {}): ShotSplit[] {
  return Array.from(trainCounts, (n, j): ShotSplit => {
    check(Number.isFinite(n) && n >= 0, 'shotSplits', `class ${j} training count is ${n}`);
    return n > manyAbove ? 'many' : n < fewBelow ? 'few' : 'medium';
  });
}

export interface ShotAccuracy {
  many: number;
  medium: number;
  few: number;
}

/**
 * Mean of the per-class accuracies within each split, over the classes that have test samples, as
 * Decoupling's shot_acc; NaN for an empty split (their code reports 0 there).
 */
export function shotAccuracy(classAccuracy: ArrayLike<number>, trainCounts: ArrayLike<number>, thresholds: ShotThresholds = {}): ShotAccuracy {
  check(classAccuracy.length === trainCounts.length, 'shotAccuracy', `${classAccuracy.length} class accuracies for ${trainCounts.length} training counts`);
  const splits = shotSplits(trainCounts, thresholds);
  const sum = { many: 0, medium: 0, few: 0 };
  const n = { many: 0, medium: 0, few: 0 };
  splits.forEach((split, j) => {
    if (Number.isNaN(classAccuracy[j])) return;
    sum[split] += classAccuracy[j];
    n[split]++;
  });
  const mean = (s: ShotSplit): number => (n[s] > 0 ? sum[s] / n[s] : NaN);
  return { many: mean('many'), medium: mean('medium'), few: mean('few') };
}

/** Counts with row = true class, column = predicted class (C×C, row-major). */
export function confusionMatrix(predicted: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): Int32Array {
  check(predicted.length === labels.length, 'confusionMatrix', `${predicted.length} predictions for ${labels.length} labels`);
  checkLabelRange('confusionMatrix', labels, numClasses, 'label');
  checkLabelRange('confusionMatrix', predicted, numClasses, 'prediction');
  const m = new Int32Array(numClasses * numClasses);
  for (let i = 0; i < labels.length; i++) m[labels[i] * numClasses + predicted[i]]++;
  return m;
}

/**
 * Macro-F1: the mean over classes of F1_c = 2·TP / (2·TP + FP + FN), over the classes that occur
 * as a label or a prediction (scikit-learn's f1_score(average='macro'), as Decoupling reports it).
 */
export function macroF1(predicted: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): number {
  const m = confusionMatrix(predicted, labels, numClasses);
  let sum = 0;
  let classes = 0;
  for (let c = 0; c < numClasses; c++) {
    let rowSum = 0;
    let colSum = 0;
    for (let j = 0; j < numClasses; j++) {
      rowSum += m[c * numClasses + j];
      colSum += m[j * numClasses + c];
    }
    if (rowSum + colSum === 0) continue;
    const tp = m[c * numClasses + c];
    sum += (2 * tp) / (rowSum + colSum);
    classes++;
  }
  return sum / classes;
}

export interface LongTailEvaluation extends ShotAccuracy {
  /** Overall top-1 accuracy (the "Average" column). */
  top1: number;
  /** Top-5 accuracy; NaN with fewer than 5 classes. */
  top5: number;
  macroF1: number;
  perClass: Float64Array;
}

/** Every classification metric of the design's evaluation contract, from score rows and training-set class counts. */
export function evaluateLongTail(scores: Scores, labels: ArrayLike<number>, trainCounts: ArrayLike<number>, thresholds: ShotThresholds = {}): LongTailEvaluation {
  const C = trainCounts.length;
  checkScores('evaluateLongTail', scores, labels, C);
  const predicted = predictions(scores, C);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  const perClass = perClassAccuracy(predicted, labels, C);
  return {
    top1: correct / labels.length,
    top5: C >= 5 ? topKAccuracy(scores, labels, C, 5) : NaN,
    ...shotAccuracy(perClass, trainCounts, thresholds),
    macroF1: macroF1(predicted, labels, C),
    perClass,
  };
}

/** One row of the results table; accuracies as fractions in [0, 1], NaN where not measured. */
export interface ResultRow {
  method: string;
  average: number;
  many: number;
  medium: number;
  few: number;
}

const HEADER = ['Method', 'Average', 'Many', 'Medium', 'Few'];

/** One-decimal percent, '-' for a missing value (as in the seed talk's tables). */
export const formatPercent = (x: number): string => (Number.isFinite(x) ? (x * 100).toFixed(1) : '-');

const cells = (r: ResultRow): string[] => [r.method, formatPercent(r.average), formatPercent(r.many), formatPercent(r.medium), formatPercent(r.few)];

/** `| Method | Average | Many | Medium | Few |` with one-decimal percentages. */
export function resultsTableMarkdown(rows: readonly ResultRow[]): string {
  const line = (c: string[]): string => `| ${c.join(' | ')} |`;
  return [line(HEADER), '| --- | ---: | ---: | ---: | ---: |', ...rows.map((r) => line(cells(r)))].join('\n') + '\n';
}

/** The same table as aligned plain text: method left-aligned, numbers right-aligned. */
export function resultsTableText(rows: readonly ResultRow[]): string {
  const table = [HEADER, ...rows.map(cells)];
  const widths = HEADER.map((_, c) => Math.max(...table.map((r) => r[c].length)));
  return table.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n') + '\n';
}

/** One confidence bin of a reliability diagram. */
export interface ReliabilityBin {
  /** The bin's confidence range [lo, hi). */
  lo: number;
  hi: number;
  count: number;
  /** Mean top-1 softmax confidence of its samples (NaN when empty). */
  confidence: number;
  /** Their top-1 accuracy (NaN when empty). */
  accuracy: number;
}

/**
 * Reliability diagram and expected calibration error (Guo et al., "On calibration of modern neural
 * networks", ICML 2017): samples binned by their top-1 softmax confidence into `bins` equal-width
 * bins (a confidence of exactly 1 falls in the last), ECE = Σ_b (n_b/N)·|acc_b − conf_b|.
 */
export function reliability(scores: Scores, labels: ArrayLike<number>, numClasses: number, bins = 15): { bins: ReliabilityBin[]; ece: number } {
  checkScores('reliability', scores, labels, numClasses);
  check(Number.isSafeInteger(bins) && bins > 0, 'reliability', `bins must be a positive integer, got ${bins}`);
  const predicted = predictions(scores, numClasses);
  const count = new Float64Array(bins), conf = new Float64Array(bins), hits = new Float64Array(bins);
  for (let i = 0; i < labels.length; i++) {
    const base = i * numClasses, top = scores[base + predicted[i]];
    let z = 0;
    for (let j = 0; j < numClasses; j++) z += Math.exp(scores[base + j] - top);
    const p = 1 / z; // the softmax probability of the argmax
    const b = Math.min(bins - 1, Math.floor(p * bins));
    count[b]++;
    conf[b] += p;
    if (predicted[i] === labels[i]) hits[b]++;
  }
  let ece = 0;
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const n = count[b];
    const bin = { lo: b / bins, hi: (b + 1) / bins, count: n, confidence: n ? conf[b] / n : NaN, accuracy: n ? hits[b] / n : NaN };
    if (n) ece += (n / labels.length) * Math.abs(bin.accuracy - bin.confidence);
    out.push(bin);
  }
  return { bins: out, ece };
}
