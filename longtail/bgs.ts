// Balanced group softmax (Li et al., "Overcoming Classifier Imbalance for Long-tail Object Detection
// with Balanced Group Softmax", CVPR 2020; FishYuLi/BalancedGroupSoftmax GSBBoxHeadWith0): classes
// are binned by training-instance count, each bin gets its own softmax with an extra "others"
// class, and a bin trains only on its classes plus a sample of the others. Classification has no
// background, so their background bin (group 0) is left out.

import { tensor } from '../kernels/creation.js';
import { backend } from '../kernels/device.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { add, concat, gather, logSoftmax, mulScalar, narrow, softmaxKL, sum } from '../autograd/ops.js';
import { constant, normal } from '../nn/init.js';
import { Linear, type DeviceOption } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { checkFeatures, checkHeadSize, type Head } from './heads.js';
import { INIT_STREAMS, Rng, STREAMS } from '../data/rng.js';
import { checkCachedFeatures, resolveStage2Options, seededInit, STAGE2_MIN_ITERATIONS, trainOnCachedFeatures, type Stage2Options } from './stage2.js';
import { checkClassCounts } from './weights.js';

/** The classes of each group and where each group's slice lies in the [C + G] raw logits. */
export interface GroupSplit {
  /** Class ids of each non-empty group, ascending. */
  readonly groups: readonly Int32Array[];
  /** class → its group. */
  readonly classGroup: Int32Array;
  /** class → its column inside its group's slice (column 0 is the group's "others"). */
  readonly classSlot: Int32Array;
  /** group → the first column of its slice; the slice has groups[g].length + 1 columns. */
  readonly sliceStart: Int32Array;
  /** class → its column among the groups' class columns laid end to end (others dropped). */
  readonly mergedColumn: Int32Array;
}

/**
 * Groups classes by instance count n_j: group k holds t_{k−1} ≤ n_j < t_k for thresholds t
 * (default [10, 100, 1000]: their LVIS bins (0, 10), [10, 100), [100, 1000), [1000, ∞), lvis_analyse.py
 * get_cate_gs). Empty groups are dropped.
 */
export function groupSplit(classCounts: ArrayLike<number>, thresholds: readonly number[] = [10, 100, 1000]): GroupSplit {
  const op = 'groupSplit';
  checkClassCounts(op, classCounts);
  check(thresholds.every((t, i) => Number.isFinite(t) && t > 0 && (i === 0 || t > thresholds[i - 1])), op, `thresholds must be increasing positive numbers, got [${thresholds}]`);
  const C = classCounts.length;
  const bins: number[][] = Array.from({ length: thresholds.length + 1 }, () => []);
  for (let j = 0; j < C; j++) bins[thresholds.filter((t) => classCounts[j] >= t).length].push(j);
  const groups = bins.filter((b) => b.length > 0).map((b) => Int32Array.from(b));
  const classGroup = new Int32Array(C), classSlot = new Int32Array(C), mergedColumn = new Int32Array(C);
  const sliceStart = new Int32Array(groups.length);
  let column = 0, merged = 0;
  groups.forEach((members, g) => {
    sliceStart[g] = column;
    column += members.length + 1;
    members.forEach((j, k) => {
      classGroup[j] = g;
      classSlot[j] = k + 1;
      mergedColumn[j] = merged++;
    });
  });
  return { groups, classGroup, classSlot, sliceStart, mergedColumn };
}

export interface GroupSoftmaxHeadOptions extends DeviceOption {
  /** Instance-count thresholds between groups (default [10, 100, 1000]). */
  thresholds?: readonly number[];
}

/**
 * A linear layer fc [C + G, D] scored group by group (their fc_cls of num_classes + num_bins, initialised
 * N(0, 0.01²) with zero bias as mmdet's bbox head). forward() gives log p_j with p_j the softmax of
 * j's group at j's column: their _merge_score without the background factor.
 */
export class GroupSoftmaxHead extends Module implements Head {
  fc: Linear;
  readonly split: GroupSplit;
  readonly numClasses: number;

  constructor(
    readonly inFeatures: number,
    classCounts: ArrayLike<number>,
    { thresholds, device = backend() }: GroupSoftmaxHeadOptions = {},
  ) {
    super();
    checkHeadSize('GroupSoftmaxHead', inFeatures, classCounts.length);
    this.split = groupSplit(classCounts, thresholds);
    this.numClasses = classCounts.length;
    this.fc = new Linear(inFeatures, this.numClasses + this.split.groups.length, { device });
    normal(this.fc.weight, 0, 0.01);
    constant(this.fc.bias!, 0);
  }

  /** The raw scores [N, C + G]: each group's slice is [others, its classes...]. */
  rawLogits(x: Tensor): Tensor {
    checkFeatures('GroupSoftmaxHead', x, this.inFeatures);
    return this.fc.forward(x);
  }

  /** Each group's log-softmax at its classes' columns, in class order [N, C]. */
  forward(x: Tensor): Tensor {
    const raw = this.rawLogits(x);
    const { groups, sliceStart, mergedColumn } = this.split;
    const perGroup = groups.map((members, g) => narrow(logSoftmax(narrow(raw, 1, sliceStart[g], members.length + 1)), 1, 1, members.length));
    const laidOut = perGroup.length === 1 ? perGroup[0] : concat(perGroup, 1);
    return gather(laidOut, tensor(mergedColumn, [this.numClasses], { dtype: 'i32', device: raw.device }), 1);
  }
}

/**
 * Σ_g CE over group g's slice with labels mapped into the group (others = 0), each group averaged
 * over its kept rows: all of its classes' samples plus ⌊ratio·positives⌋ others drawn without
 * replacement (all others when fewer); a group without positives in the batch contributes nothing
 * (their _remap_labels / _sample_others, others_sample_ratio 8).
 */
export function groupSoftmaxLoss(raw: Tensor, labelValues: ArrayLike<number>, split: GroupSplit, othersRatio: number, rng: Rng): Tensor {
  const op = 'groupSoftmaxLoss';
  const C = split.classGroup.length, G = split.groups.length;
  check(raw.rank === 2 && raw.shape[1] === C + G && raw.shape[0] === labelValues.length, op, () => `expects raw scores [${labelValues.length}, ${C + G}], got ${fmtShape(raw.shape)}`);
  check(Number.isFinite(othersRatio) && othersRatio >= 0, op, `othersRatio must be a non-negative number, got ${othersRatio}`);
  const N = labelValues.length;
  let loss: Tensor | null = null;
  for (let g = 0; g < G; g++) {
    const mapped = new Int32Array(N).fill(-1); // −1: not used by this group (softmaxKL ignores the row)
    const others: number[] = [];
    let positives = 0;
    for (let i = 0; i < N; i++) {
      const y = labelValues[i];
      if (split.classGroup[y] === g) {
        mapped[i] = split.classSlot[y];
        positives++;
      } else others.push(i);
    }
    if (positives === 0) continue;
    const take = Math.floor(positives * othersRatio);
    if (take >= others.length) for (const i of others) mapped[i] = 0;
    else {
      // partial Fisher–Yates: the first `take` entries become a uniform sample without replacement
      for (let k = 0; k < take; k++) {
        const r = k + rng.int(others.length - k);
        [others[k], others[r]] = [others[r], others[k]];
        mapped[others[k]] = 0;
      }
    }
    const kept = positives + Math.min(take, others.length);
    const slice = narrow(raw, 1, split.sliceStart[g], split.groups[g].length + 1);
    const groupLoss = mulScalar(sum(softmaxKL(slice, { labels: tensor(mapped, [N], { dtype: 'i32', device: raw.device }) })), 1 / Math.max(kept, 1));
    loss = loss ? add(loss, groupLoss) : groupLoss;
  }
  check(loss, op, 'the batch is empty');
  return loss;
}

export interface GroupSoftmaxTrainOptions extends Stage2Options {
  /** Instance-count thresholds between groups (default [10, 100, 1000]). */
  bgsThresholds?: readonly number[];
  /** Others kept per positive in a group (default 8, their others_sample_ratio). */
  bgsOthersRatio?: number;
}

/**
 * Trains a balanced-group-softmax classifier on cached features: a new fc (their stage-2 fine-tuning of
 * the classification layer, selectp = 1), instance-balanced sampling, SGD lr 0.01, momentum 0.9,
 * weight decay 1e-4, 12 epochs (their config; the schedule here is cosine), at least
 * STAGE2_MIN_ITERATIONS steps on small sets.
 */
export async function trainGroupSoftmax(
  features: Tensor, labels: ArrayLike<number>, classCounts: ArrayLike<number>, opts: GroupSoftmaxTrainOptions = {},
): Promise<{ head: GroupSoftmaxHead; epochLosses: number[] }> {
  const op = 'bgs';
  check(features.rank === 2, op, `training features must be [N, D], got ${fmtShape(features.shape)}`);
  const head = new GroupSoftmaxHead(features.shape[1], classCounts, { thresholds: opts.bgsThresholds, device: features.device });
  const y = checkCachedFeatures(op, features, labels, head.numClasses);
  const o = resolveStage2Options(op, opts, { epochs: 12, minIterations: STAGE2_MIN_ITERATIONS, batchSize: 256, lr: 0.01, momentum: 0.9, weightDecay: 1e-4, sampler: 'instance', seed: 0 });
  // the head starts from the method's seed: weight N(0, 0.01) as before, bias as torch Linear
  seededInit(head.fc.weight, 'normal', 0, 0.01, o.seed, INIT_STREAMS.groupSoftmaxWeight);
  if (head.fc.bias) seededInit(head.fc.bias, 'uniform', -1 / Math.sqrt(features.shape[1]), 1 / Math.sqrt(features.shape[1]), o.seed, INIT_STREAMS.groupSoftmaxBias);
  const ratio = opts.bgsOthersRatio ?? 8;
  const epochLosses = await trainOnCachedFeatures(op, features, y, head.numClasses, head.namedParameters(), (b) =>
    // the others drawn for a batch: a stream of their own per (seed, epoch, batch)
    groupSoftmaxLoss(head.rawLogits(b.features), b.labelValues, head.split, ratio, new Rng(o.seed, b.epoch, STREAMS.groupSoftmaxOthers + b.index)), o);
  return { head, epochLosses };
}
