// Learning-rate schedules as pure functions of (epoch, iteration), both counted from 0: a resumed
// run gets its learning rate back from the epoch alone. Pass the result to optimizer.setLr().

import { check } from '../kernels/errors.js';

/** The learning rate at a 0-based epoch and 0-based iteration within that epoch. */
export type Schedule = (epoch: number, iteration?: number) => number;

export interface WarmupOptions {
  /** Linear warm-up over this many epochs: factor (t+1)/W at warm-up step t (0 = none). */
  warmupEpochs?: number;
  /**
   * Iterations per epoch. Given, the warm-up (and the cosine) advance every iteration, t counting
   * iterations (Goyal et al. 2017); otherwise they advance once per epoch (LDAM-DRW).
   */
  itersPerEpoch?: number;
}

/** The position on the schedule's clock: t and the warm-up length W, in epochs or iterations. */
function clock(op: string, epoch: number, iteration: number, o: WarmupOptions): { t: number; warmup: number; perEpoch: number } {
  const { warmupEpochs = 0, itersPerEpoch } = o;
  check(Number.isInteger(epoch) && epoch >= 0, op, `epoch must be an integer >= 0, got ${epoch}`);
  check(Number.isInteger(iteration) && iteration >= 0, op, `iteration must be an integer >= 0, got ${iteration}`);
  check(Number.isInteger(warmupEpochs) && warmupEpochs >= 0, op, `warmupEpochs must be an integer >= 0, got ${warmupEpochs}`);
  if (itersPerEpoch === undefined) return { t: epoch, warmup: warmupEpochs, perEpoch: 1 };
  check(Number.isInteger(itersPerEpoch) && itersPerEpoch > 0, op, `itersPerEpoch must be an integer > 0, got ${itersPerEpoch}`);
  check(iteration < itersPerEpoch, op, `iteration ${iteration} is out of range for ${itersPerEpoch} iterations per epoch`);
  return { t: epoch * itersPerEpoch + iteration, warmup: warmupEpochs * itersPerEpoch, perEpoch: itersPerEpoch };
}

/** A fixed learning rate. */
export const constantLr = (lr: number): Schedule => () => lr;

export interface MultiStepOptions extends WarmupOptions {
  lr: number;
  /** Epochs (0-based, increasing) from which the next factor applies. */
  milestones: number[];
  /** lr · γ^k after k milestones (torch.optim.lr_scheduler.MultiStepLR). */
  gamma?: number;
  /** Instead of γ^k: lr · factors[k−1] after k milestones. */
  factors?: number[];
}

/**
 * Linear warm-up (Goyal et al. 2017), then a step decay: lr·(t+1)/W while t < W, else lr·γ^k (or
 * lr·factors[k−1]) where k = the number of milestones ≤ epoch (torch MultiStepLR).
 */
export function multiStepLr(o: MultiStepOptions): Schedule {
  const op = 'multiStepLr';
  const { lr, milestones, gamma = 0.1, factors } = o;
  check(milestones.every((m, i) => Number.isInteger(m) && m > (milestones[i - 1] ?? -1)), op, `milestones must be increasing integers, got [${milestones}]`);
  check(!factors || factors.length === milestones.length, op, `${factors?.length} factors for ${milestones.length} milestones`);
  return (epoch, iteration = 0) => {
    const { t, warmup } = clock(op, epoch, iteration, o);
    if (t < warmup) return (lr * (t + 1)) / warmup;
    const k = milestones.filter((m) => m <= epoch).length;
    return k === 0 ? lr : factors ? lr * factors[k - 1] : lr * gamma ** k;
  };
}

/**
 * LDAM-DRW's CIFAR schedule (Cao et al., NeurIPS 2019, cifar_train.py adjust_learning_rate): with
 * e = epoch + 1, lr·e/5 for e ≤ 5, lr·0.01 for 160 < e ≤ 180, lr·0.0001 for e > 180, else lr.
 * The warm-up is per epoch.
 */
export const ldamDrwLr = (lr = 0.1): Schedule => multiStepLr({ lr, warmupEpochs: 5, milestones: [160, 180], factors: [0.01, 0.0001] });

export interface CosineOptions extends WarmupOptions {
  lr: number;
  /** Total length in epochs, warm-up included: the cosine reaches etaMin at this epoch. */
  epochs: number;
  etaMin?: number;
}

/**
 * Linear warm-up over W steps, then cosine annealing (Loshchilov & Hutter, ICLR 2017) over T = total − W:
 * η = η_min + (lr − η_min)·(1 + cos(π·(t − W)/T))/2, torch CosineAnnealingLR's closed form with
 * T_max = T (warmupEpochs 0: exactly CosineAnnealingLR(T_max = epochs, eta_min) stepped per epoch).
 * Past the end it follows the cosine back up, as torch does.
 */
export function cosineLr(o: CosineOptions): Schedule {
  const op = 'cosineLr';
  const { lr, epochs, etaMin = 0, warmupEpochs = 0 } = o;
  check(Number.isInteger(epochs) && epochs > warmupEpochs, op, `epochs (${epochs}) must be an integer above warmupEpochs (${warmupEpochs})`);
  return (epoch, iteration = 0) => {
    const { t, warmup, perEpoch } = clock(op, epoch, iteration, o);
    if (t < warmup) return (lr * (t + 1)) / warmup;
    const tMax = epochs * perEpoch - warmup;
    return etaMin + ((lr - etaMin) * (1 + Math.cos((Math.PI * (t - warmup)) / tMax))) / 2;
  };
}
