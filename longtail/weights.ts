// Re-weighting formulas: the per-class numbers that long-tail losses and calibration heads use
// (class-balanced weights, LDAM margins, DRW, DisAlign's generalized re-weighting, EQL/SEQL masks,
// logit-adjustment priors). Plain float64 arrays; the losses turn them into tensors.
import { check } from '../kernels/errors.js';
import type { Rng } from '../data/rng.js';

/** Throws a named error unless every class count is finite and > 0 (the formulas below divide by n_j or take its log). */
export function checkClassCounts(op: string, counts: ArrayLike<number>): void {
  check(counts.length > 0, op, 'the class-count list is empty');
  for (let j = 0; j < counts.length; j++) {
    const n = counts[j];
    check(!Number.isNaN(n), op, `class ${j} count is NaN`);
    check(Number.isFinite(n) && n >= 0, op, `class ${j} count is ${n}; counts must be finite and non-negative`);
    check(n > 0, op, `class ${j} has count 0; the weight of a class without training samples is undefined (drop the class or give it a count)`);
  }
}

/** Throws a named error unless `weights` has one finite entry per class. */
export function checkClassWeights(op: string, weights: ArrayLike<number>, numClasses: number): void {
  check(weights.length === numClasses, op, `got ${weights.length} class weights for ${numClasses} classes`);
  for (let j = 0; j < weights.length; j++) check(Number.isFinite(weights[j]), op, `class ${j} weight is ${weights[j]}`);
}

/** Throws unless every label is an integer in [0, limit). */
function checkLabels(op: string, labels: ArrayLike<number>, limit: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    check(Number.isInteger(y) && y >= 0 && y < limit, op, `label ${y} at index ${i} is outside ${what}`);
  }
}

function checkBeta(op: string, beta: number): void {
  check(Number.isFinite(beta) && beta >= 0 && beta < 1, op, `beta must be in [0, 1), got ${beta}`);
}

/** E_n = (1 − β^n) / (1 − β): the effective number of n samples (Cui et al., CVPR 2019). */
export function effectiveNumber(n: number, beta: number): number {
  checkBeta('effectiveNumber', beta);
  check(Number.isFinite(n) && n >= 0, 'effectiveNumber', `n must be a finite non-negative number, got ${n}`);
  return (1 - beta ** n) / (1 - beta);
}

/**
 * w_j = (1 − β) / (1 − β^{n_j}) = 1 / E_{n_j}, normalised so Σ_j w_j = C (Cui et al., "Class-Balanced
 * Loss Based on Effective Number of Samples", CVPR 2019; their code's weights / Σ weights · C).
 */
export function classBalancedWeights(counts: ArrayLike<number>, beta = 0.9999): Float64Array {
  checkClassCounts('classBalancedWeights', counts);
  checkBeta('classBalancedWeights', beta);
  const w = Float64Array.from(counts, (n) => (1 - beta) / (1 - beta ** n));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((v) => (v / sum) * counts.length);
}

/**
 * Δ_j = C / n_j^{1/4} with C set so max_j Δ_j = maxMargin (Cao et al., "LDAM", NeurIPS 2019; their
 * code: m = 1/sqrt(sqrt(n)); m *= max_m / max(m); max_m = 0.5).
 */
export function ldamMargins(counts: ArrayLike<number>, maxMargin = 0.5): Float64Array {
  checkClassCounts('ldamMargins', counts);
  check(Number.isFinite(maxMargin) && maxMargin > 0, 'ldamMargins', `maxMargin must be a positive number, got ${maxMargin}`);
  const m = Float64Array.from(counts, (n) => 1 / Math.sqrt(Math.sqrt(n)));
  const largest = m.reduce((a, b) => Math.max(a, b), 0);
  return m.map((v) => v * (maxMargin / largest));
}

/**
 * Deferred re-weighting (Cao et al., NeurIPS 2019): uniform weights (all 1) before `drwEpoch`, then
 * the class-balanced weights with β (0.9999 in their code: betas = [0, 0.9999][epoch // 160]).
 */
export function drwWeights(counts: ArrayLike<number>, epoch: number, drwEpoch: number, beta = 0.9999): Float64Array {
  checkClassCounts('drwWeights', counts);
  check(Number.isFinite(epoch) && epoch >= 0, 'drwWeights', `epoch must be a non-negative number, got ${epoch}`);
  check(Number.isFinite(drwEpoch) && drwEpoch >= 0, 'drwWeights', `drwEpoch must be a non-negative number, got ${drwEpoch}`);
  return epoch < drwEpoch ? new Float64Array(counts.length).fill(1) : classBalancedWeights(counts, beta);
}

/**
 * DisAlign's generalized re-weighting w_c = (1/r_c)^ρ / Σ_k (1/r_k)^ρ, r = empirical class
 * frequencies (Zhang et al., "Distribution Alignment", CVPR 2021, eq. 9). The paper's weights sum
 * to 1; the official code (cvpods GRWCrossEntropyLoss) multiplies them by C so they average 1,
 * which is the default here (`sum` = C). For detection the official code appends a background
 * weight of 1 after the C foreground weights.
 */
export function grwWeights(counts: ArrayLike<number>, rho: number, sum: number = counts.length): Float64Array {
  checkClassCounts('grwWeights', counts);
  check(Number.isFinite(rho) && rho >= 0, 'grwWeights', `rho must be a non-negative number, got ${rho}`);
  check(Number.isFinite(sum) && sum > 0, 'grwWeights', `sum must be a positive number, got ${sum}`);
  let total = 0;
  for (let j = 0; j < counts.length; j++) total += counts[j];
  const w = Float64Array.from(counts, (n) => (total / n) ** rho);
  const norm = w.reduce((a, b) => a + b, 0);
  return w.map((v) => (v / norm) * sum);
}

/**
 * τ·log π_j with π_j = n_j / Σ n: the prior that logit adjustment adds to the logits in the loss
 * (z + τ log π) or subtracts after training (z − τ log π) (Menon et al., "Long-tail learning via
 * logit adjustment", ICLR 2021). Their code takes log(π^τ + 1e-12); zero counts are rejected here.
 */
export function logitAdjustments(counts: ArrayLike<number>, tau = 1): Float64Array {
  checkClassCounts('logitAdjustments', counts);
  check(Number.isFinite(tau), 'logitAdjustments', `tau must be a finite number, got ${tau}`);
  let total = 0;
  for (let j = 0; j < counts.length; j++) total += counts[j];
  return Float64Array.from(counts, (n) => tau * Math.log(n / total));
}

/** f_k = (images containing k) / (images): the frequency EQL thresholds (their LVIS image_count / #images). */
export function imageFrequencies(imageCounts: ArrayLike<number>, numImages: number): Float64Array {
  check(Number.isSafeInteger(numImages) && numImages > 0, 'imageFrequencies', `numImages must be a positive integer, got ${numImages}`);
  return Float64Array.from(imageCounts, (n, k) => {
    check(Number.isFinite(n) && n >= 0 && n <= numImages, 'imageFrequencies', `class ${k} appears in ${n} of ${numImages} images`);
    return n / numImages;
  });
}

/** T_λ(f_k) = 1 if f_k < λ else 0: EQL's tail-category indicator (Tan et al., "Equalization Loss", CVPR 2020). */
export function tailIndicator(frequencies: ArrayLike<number>, lambda: number): Uint8Array {
  check(Number.isFinite(lambda), 'tailIndicator', `lambda must be a finite number, got ${lambda}`);
  return Uint8Array.from(frequencies, (f, k) => {
    check(!Number.isNaN(f), 'tailIndicator', `class ${k} frequency is NaN`);
    return f < lambda ? 1 : 0;
  });
}

/**
 * Sigmoid EQL weights w_ij = 1 − E(r_i)·T_λ(f_j)·(1 − y_ij) (Tan et al., CVPR 2020), N×C row-major.
 * Labels are in [0, C]; C is the background, for which E(r) = 0 (its row is all ones).
 */
export function eqlWeights(labels: ArrayLike<number>, tail: ArrayLike<number>): Float32Array {
  const C = tail.length;
  check(C > 0, 'eqlWeights', 'the tail indicator is empty');
  checkLabels('eqlWeights', labels, C + 1, `[0, ${C}] (${C} = background)`);
  const w = new Float32Array(labels.length * C).fill(1);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === C) continue;
    for (let j = 0; j < C; j++) if (tail[j] && j !== labels[i]) w[i * C + j] = 0;
  }
  return w;
}

/**
 * Softmax EQL weights w̃_ik = 1 − β_ik·T_λ(f_k)·(1 − y_ik), with β_ik = 1 with probability γ and 0
 * otherwise, drawn per entry (Tan et al., CVPR 2020, softmax EQL; the denominator of p̃ is Σ_k w̃_k e^{z_k}).
 * N×C row-major; labels in [0, C).
 */
export function seqlWeights(labels: ArrayLike<number>, tail: ArrayLike<number>, gamma: number, rng: Rng): Float32Array {
  const C = tail.length;
  check(C > 0, 'seqlWeights', 'the tail indicator is empty');
  check(Number.isFinite(gamma) && gamma >= 0 && gamma <= 1, 'seqlWeights', `gamma must be a probability, got ${gamma}`);
  checkLabels('seqlWeights', labels, C, `the ${C} classes`);
  const w = new Float32Array(labels.length * C).fill(1);
  for (let i = 0; i < labels.length; i++) {
    for (let k = 0; k < C; k++) if (rng.uniform() < gamma && tail[k] && k !== labels[i]) w[i * C + k] = 0;
  }
  return w;
}

/** Per-sample weights w_{y_i} gathered from per-class weights (what a weighted loss multiplies in). */
export function sampleWeights(classWeights: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number = classWeights.length): Float32Array {
  checkClassWeights('sampleWeights', classWeights, numClasses);
  checkLabels('sampleWeights', labels, numClasses, `the ${numClasses} classes`);
  return Float32Array.from(labels, (y) => classWeights[y]);
}
