// Long-tailed subsets of balanced datasets by the protocol of Cao et al., "Learning Imbalanced
// Datasets with Label-Distribution-Aware Margin Loss" (LDAM-DRW, NeurIPS 2019), and the
// many/medium/few class groups of Liu et al., "Large-Scale Long-Tailed Recognition in an Open
// World" (OLTR, CVPR 2019).

import { DataRng, shuffleInPlace } from './rng.js';

export type ImbalanceType = 'exp' | 'step';

export interface LongTailOptions {
  /** IF = n_max / n_min (100 means the rarest class keeps 1/100 of n_max). */
  imbalanceFactor: number;
  type?: ImbalanceType;
  /** Per-class shuffles are keyed by (seed, class); default 0. */
  seed?: number;
  /** Images of the most frequent class; default: dataset size / number of classes, as Cao et al. */
  nMax?: number;
}

/** Images kept per class. exp: n_i = int(n_max · IF^(−i/(C−1))); step: the first floor(C/2)
 * classes keep int(n_max), the rest int(n_max / IF) (Cao et al. 2019, `get_img_num_per_cls`). */
export function longTailCounts(numClasses: number, nMax: number, imbalanceFactor: number, type: ImbalanceType = 'exp'): number[] {
  if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`longTailCounts: number of classes ${numClasses} is not a positive integer`);
  if (!(imbalanceFactor >= 1)) throw new RangeError(`longTailCounts: imbalance factor ${imbalanceFactor} must be >= 1`);
  if (!(nMax > 0)) throw new RangeError(`longTailCounts: n_max ${nMax} must be positive`);
  // Cao et al. pass imb_factor = 1/IF and compute img_max * imb_factor**(i / (C - 1.0)); doing the
  // same float operations keeps int() truncation identical (CIFAR-10, IF 100: 12,406 images).
  const inverse = 1 / imbalanceFactor;
  const counts: number[] = [];
  for (let i = 0; i < numClasses; i++) {
    if (type === 'exp') counts.push(Math.trunc(numClasses === 1 ? nMax : nMax * inverse ** (i / (numClasses - 1))));
    else counts.push(Math.trunc(i < Math.floor(numClasses / 2) ? nMax : nMax * inverse));
  }
  return counts;
}

/** Indices of a long-tailed subset: for each class c, its indices in dataset order are shuffled
 * with a DataRng keyed by (seed, c) and the first n_c are kept (Cao et al.'s
 * `gen_imbalanced_data`; our shuffle does not reproduce numpy's). Grouped by class, in class order. */
export function longTailSubset(labels: ArrayLike<number>, numClasses: number, options: LongTailOptions): Int32Array {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!(l >= 0 && l < numClasses)) throw new RangeError(`longTailSubset: label ${l} at index ${i} is outside [0, ${numClasses})`);
    byClass[l].push(i);
  }
  const nMax = options.nMax ?? labels.length / numClasses;
  const counts = longTailCounts(numClasses, nMax, options.imbalanceFactor, options.type);
  const out = new Int32Array(counts.reduce((a, b) => a + b, 0));
  let k = 0;
  for (let c = 0; c < numClasses; c++) {
    if (byClass[c].length < counts[c]) throw new RangeError(`longTailSubset: class ${c} has ${byClass[c].length} images, fewer than the ${counts[c]} to keep`);
    const idx = shuffleInPlace(byClass[c], new DataRng(options.seed ?? 0, c));
    out.set(idx.slice(0, counts[c]), k);
    k += counts[c];
  }
  return out;
}

/** Images per class. */
export function countLabels(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!(l >= 0 && l < numClasses)) throw new RangeError(`countLabels: label ${l} at index ${i} is outside [0, ${numClasses})`);
    counts[l]++;
  }
  return counts;
}

export interface ShotGroups {
  many: number[];
  medium: number[];
  few: number[];
}

/** Class indices by training images: many > 100, medium 20..100, few < 20 (Liu et al. 2019). */
export function shotGroups(trainCounts: ArrayLike<number>, manyAbove = 100, fewBelow = 20): ShotGroups {
  const groups: ShotGroups = { many: [], medium: [], few: [] };
  for (let c = 0; c < trainCounts.length; c++) {
    const n = trainCounts[c];
    (n > manyAbove ? groups.many : n < fewBelow ? groups.few : groups.medium).push(c);
  }
  return groups;
}
