// The stage-2 training loop of decoupled long-tail learning on cached features: the backbone is
// frozen, so its pooled features X [N, D] are computed once and every epoch only re-reads them
// (or, with a batch source, each batch's features come from augmented images through the backbone).
// Mini-batches are drawn by a long-tail sampler (samplers.ts), gathered on the device, and a small
// head is trained with SGD + momentum under a cosine schedule (as cRT/LWS in classifier-balancing
// and DisAlign's stage 2 in cvpods). The loss is read back once per epoch, never inside a step.

import { tensor, zeros } from '../kernels/creation.js';
import { binary } from '../kernels/elementwise.js';
import { check, fmtShape, OpError } from '../kernels/errors.js';
import { gather } from '../kernels/indexing.js';
import { concat } from '../kernels/layout.js';
import { keep, scope, type Tensor } from '../kernels/tensor.js';
import { SGD, type NamedTensor } from '../nn/optim.js';
import { cosineLr } from '../nn/schedule.js';
import { createSampler } from './samplers.js';
import { random } from '../kernels/random.js';
import { fill } from '../nn/init.js';

/**
 * Re-draws `t` from U(a, b) or N(a, b) with a generator of its own, a pure function of (seed,
 * stream): what a stage-2 method learns starts from its `seed`, not from the process's global draw order.
 */
export function seededInit(t: Tensor, dist: 'uniform' | 'normal', a: number, b: number, seed: number, stream: number): Tensor {
  return fill(t, (device) => random(dist, t.shape, { device, a, b, seed: seed * 4096 + stream }));
}

/** torch Linear's default initialisation (weight and bias U(±1/√fan_in)), seeded. */
export function seededLinearInit(layer: { weight: Tensor; bias: Tensor | null }, seed: number, stream: number): void {
  const bound = 1 / Math.sqrt(layer.weight.shape[1]);
  seededInit(layer.weight, 'uniform', -bound, bound, seed, stream);
  if (layer.bias) seededInit(layer.bias, 'uniform', -bound, bound, seed, stream + 1);
}

/**
 * The floor on SGD steps of the instance-sampled stage-2 methods (DisAlign, balanced group softmax).
 * Their papers' epochs are 4,500 steps on ImageNet-LT (DisAlign: 10 epochs of 453 batches) but a few
 * dozen on a set of ~1,000 images, far from converged: on the 1,236-image CIFAR-10-LT mini set
 * DisAlign's loss on a linear head is 0.99 after 50 steps and 0.81 after 500 (few-shot accuracy
 * 34.7% → 40.3%). The steps a few-parameter head needs do not shrink with N; 500 is far below the
 * papers' counts, so large sets keep their epochs. The class-balanced methods (cRT, LWS) keep their
 * epochs as given: there each image of a 5-image class is already drawn ~250 times in cRT's 10
 * epochs, as on ImageNet-LT (~230), and 500 steps lowered their few-shot accuracy (linear head:
 * cRT 28.3% → 18.0%, LWS 13.3% → 6.7%).
 */
export const STAGE2_MIN_ITERATIONS = 500;

export interface Stage2Options {
  /** Passes over the sampler's epoch length (N draws); raised to reach `minIterations` steps. */
  epochs?: number;
  /** Floor on the SGD steps: epochs become max(epochs, ⌈minIterations / ⌈N / batchSize⌉⌉); 0 keeps epochs as given. */
  minIterations?: number;
  batchSize?: number;
  /** Base learning rate of the cosine schedule (annealed to 0 over `epochs`, stepped per epoch). */
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  /** A samplers.ts spec: 'instance', 'class', 'class-aware', 'sqrt', 'pow(q)', ... */
  sampler?: string;
  seed?: number;
  /** Drop the last partial batch of each epoch (classifier-balancing's cRT/LWS loaders); default false. */
  dropLast?: boolean;
  /**
   * Step the cosine schedule at the start of each epoch, as classifier-balancing's loop
   * (scheduler.step() before the epoch): epoch e (0-based) trains at the lr of step e + 1, so the
   * last epoch has lr 0. Default false: epoch e at step e (the last epoch above 0).
   */
  lrAtEpochStart?: boolean;
  /** Called after each epoch with its mean batch loss (progress bars, loss curves). */
  onEpoch?: (epoch: number, epochs: number, loss: number) => void;
  /**
   * Where a batch's features come from: by default rows of the cached features; `imageBatches`
   * (runner.ts) runs augmented training images through the frozen backbone instead, as the official
   * cRT / LWS / DisAlign runs. The rows, labels, sampler and schedule are the same either way.
   */
  batchSource?: BatchSource;
}

/** A batch of an epoch: its dataset rows and a function that builds its features [rows, D] (called inside the step's scope). */
export interface SourcedBatch {
  rows: Int32Array;
  features: () => Tensor;
}

/** Splits an epoch's `order` into batches of `batchSize` (the last may be smaller) with their features. */
export type BatchSource = (order: Int32Array, epoch: number, batchSize: number) => AsyncIterable<SourcedBatch>;

/** The default source: rows of the cached features [N, D], gathered on the device. */
export function cachedBatches(features: Tensor): BatchSource {
  return async function* (order, _epoch, batchSize) {
    for (let start = 0; start < order.length; start += batchSize) {
      const rows = order.subarray(start, Math.min(order.length, start + batchSize));
      yield { rows, features: () => gather(features, tensor(rows, [rows.length], { dtype: 'i32', device: features.device }), 0) };
    }
  };
}

type OptionalStage2 = 'dropLast' | 'lrAtEpochStart' | 'onEpoch' | 'batchSource';
export type ResolvedStage2Options = Required<Omit<Stage2Options, OptionalStage2>> & Pick<Stage2Options, OptionalStage2>;

/** One mini-batch: the gathered features, the labels as an i32 tensor and as a CPU array. */
export interface FeatureBatch {
  features: Tensor;
  labels: Tensor;
  labelValues: Int32Array;
  epoch: number;
  /** Index of the batch within its epoch. */
  index: number;
}

/** Throws a named error unless the cached features [N, D] and their N labels in [0, numClasses) agree. */
export function checkCachedFeatures(op: string, features: Tensor, labels: ArrayLike<number>, numClasses: number): Int32Array {
  check(!features.isDisposed, op, 'the training features were used after dispose()');
  check(features.dtype === 'f32' && features.rank === 2, op, () => `training features must be f32 [N, D], got ${features.dtype} ${fmtShape(features.shape)}`);
  check(labels.length === features.shape[0], op, () => `${labels.length} labels for ${features.shape[0]} feature rows`);
  check(labels.length > 0, op, 'the training set is empty');
  const out = Int32Array.from(labels);
  for (let i = 0; i < labels.length; i++) {
    check(Number.isInteger(labels[i]) && labels[i] >= 0 && labels[i] < numClasses, op, () => `label ${labels[i]} at index ${i} is outside the ${numClasses} classes`);
  }
  return out;
}

/** A method's defaults (its paper's config) overridden by the given options. */
export function resolveStage2Options(op: string, o: Stage2Options, defaults: ResolvedStage2Options): ResolvedStage2Options {
  const r = { ...defaults, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as ResolvedStage2Options;
  check(Number.isInteger(r.epochs) && r.epochs > 0, op, `epochs must be a positive integer, got ${r.epochs}`);
  check(Number.isInteger(r.minIterations) && r.minIterations >= 0, op, `minIterations must be a non-negative integer, got ${r.minIterations}`);
  check(Number.isInteger(r.batchSize) && r.batchSize > 0, op, `batchSize must be a positive integer, got ${r.batchSize}`);
  check(Number.isFinite(r.lr) && r.lr > 0, op, `lr must be a positive number, got ${r.lr}`);
  return r;
}

/** The epochs stage 2 runs: the given ones, raised so that training takes at least o.minIterations steps. */
export function stage2Epochs(numSamples: number, o: Pick<ResolvedStage2Options, 'epochs' | 'batchSize' | 'minIterations'>): number {
  return Math.max(o.epochs, Math.ceil(o.minIterations / Math.ceil(numSamples / o.batchSize)));
}

/** The stage-2 cosine learning rate of 0-based `epoch` of `epochs` (η_min = 0); `atEpochStart`: the scheduler stepped before the epoch, as classifier-balancing. */
export function stage2Lr(lr: number, epochs: number, epoch: number, atEpochStart: boolean): number {
  const t = Math.min(epochs, epoch + (atEpochStart ? 1 : 0));
  return (lr * (1 + Math.cos((Math.PI * t) / epochs))) / 2;
}

/**
 * Steps between readbacks of the epoch losses. A small cached set has epochs of one to a few
 * batches, so reading each epoch's loss would stall the queue every step or two; the epoch totals
 * wait on the GPU and are read back together (one sync per READ_EVERY_STEPS steps, and at the end).
 */
const READ_EVERY_STEPS = 32;

/**
 * Trains `params` by SGD on mini-batches of the cached features; `lossOf` builds a scalar loss from
 * a batch. The learning rate follows cosine annealing per epoch (torch CosineAnnealingLR, T_max =
 * epochs, η_min = 0) over stage2Epochs(N, o) epochs. Returns the mean batch loss of each epoch; a NaN
 * or infinite loss stops training with an error naming the epoch (found when the losses are read
 * back, at most READ_EVERY_STEPS steps later).
 */
export async function trainOnCachedFeatures(
  op: string,
  features: Tensor,
  labels: Int32Array,
  numClasses: number,
  params: NamedTensor[],
  lossOf: (batch: FeatureBatch) => Tensor,
  o: ResolvedStage2Options,
): Promise<number[]> {
  const epochs = stage2Epochs(labels.length, o);
  const sampler = createSampler(o.sampler, labels, { seed: o.seed, numClasses, totalEpochs: epochs });
  const optimizer = new SGD(params, { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay });
  const schedule = cosineLr({ lr: o.lr, epochs });
  const device = features.device;
  const source = o.batchSource ?? cachedBatches(features);
  const epochLosses: number[] = [];
  // epoch loss totals still on the GPU: [total, batches]
  let pending: [Tensor, number][] = [];
  let pendingSteps = 0;
  const readPending = async (): Promise<void> => {
    if (!pending.length) return;
    const all = scope(() => keep(concat(pending.map(([t]) => t.reshape([1])), 0)));
    const values = await all.data();
    all.dispose();
    const batches = pending.map(([, b]) => b);
    for (const [t] of pending) t.dispose();
    pending = [];
    pendingSteps = 0;
    for (let k = 0; k < batches.length; k++) {
      const epoch = epochLosses.length, mean = values[k] / batches[k];
      if (!Number.isFinite(mean)) throw new OpError(op, `the training loss became ${mean} in epoch ${epoch + 1} of ${epochs} (check the features and the head for NaN or infinite values, or lower lr ${o.lr})`);
      epochLosses.push(mean);
      o.onEpoch?.(epoch, epochs, mean);
    }
  };
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      optimizer.setLr(o.lrAtEpochStart ? stage2Lr(o.lr, epochs, epoch, true) : schedule(epoch));
      const drawn = sampler.indices(epoch);
      const order = o.dropLast && drawn.length >= o.batchSize ? drawn.subarray(0, drawn.length - (drawn.length % o.batchSize)) : drawn;
      let total = keep(zeros([], { device }));
      let batches = 0;
      for await (const sourced of source(order, epoch, o.batchSize)) {
        const rows = sourced.rows;
        const labelValues = Int32Array.from(rows, (i) => labels[i]);
        const runningTotal = scope(() => {
          const x = sourced.features();
          check(x.rank === 2 && x.shape[0] === rows.length && x.shape[1] === features.shape[1], op, () => `the batch source gave features ${fmtShape(x.shape)} for ${rows.length} rows of ${features.shape[1]} features`);
          const batch: FeatureBatch = { features: x, labels: tensor(labelValues, [rows.length], { dtype: 'i32', device }), labelValues, epoch, index: batches };
          const l = lossOf(batch);
          check(l.size === 1, op, () => `the loss must be a scalar, got ${fmtShape(l.shape)}`);
          l.backward();
          optimizer.step();
          optimizer.zeroGrad();
          return binary('add', total, l.reshape([])); // a raw kernel: no graph
        });
        total.dispose();
        total = keep(runningTotal);
        batches++;
      }
      pending.push([total, batches]);
      pendingSteps += batches;
      if (pendingSteps >= READ_EVERY_STEPS || epoch === epochs - 1) await readPending();
    }
  } finally {
    for (const [t] of pending) t.dispose();
    optimizer.dispose();
  }
  return epochLosses;
}
