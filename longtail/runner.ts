// The two-stage runner (Kang et al. ICLR 2020; Zhang et al. CVPR 2021): stage 1 trains backbone +
// classifier with any sampler and loss; features are extracted once and cached; stage 2 applies a
// calibration by name on the cached features; evaluation reports Average / Many / Medium / Few.
// Browser-safe: batches come from any BatchLoader (data/loader.ts), files are the caller's business.

import { check, OpError } from '../kernels/errors.js';
import { tensor } from '../kernels/creation.js';
import { binary } from '../kernels/elementwise.js';
import { keep, scope, Tensor } from '../kernels/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { mulScalar } from '../autograd/ops.js';
import { Module } from '../nn/module.js';
import type { Optimizer } from '../nn/optim.js';
import type { Schedule } from '../nn/schedule.js';
import type { BatchLoader } from '../data/loader.js';
import { crossEntropy, focalLoss, ldamLoss, logitAdjustedLoss, sigmoidLoss, eqlLoss, seqlLoss } from './losses.js';
import { classBalancedWeights, drwWeights, eqlWeights, seqlWeights, tailIndicator } from './weights.js';
import { type Sampler } from './samplers.js';
import { Rng, STREAMS } from '../data/rng.js';
import { evaluateLongTail, type LongTailEvaluation } from './metrics.js';
import type { Head } from './heads.js';
import type { BatchSource } from './stage2.js';

/** A feature extractor: images [N, 3, H, W] → pooled features [N, featureDim]. */
export interface Backbone extends Module {
  readonly featureDim: number;
  features(x: Tensor): Tensor;
}

/** Backbone + classifier head, trained jointly in stage 1; the head is what stage 2 calibrates. */
export class TwoStageModel extends Module {
  constructor(
    readonly backbone: Backbone,
    readonly head: Head,
    /** The backbone's own classifier (torchvision's `fc`), unused here and left out of training. */
    private readonly unusedPrefixes: string[] = ['fc.', 'linear.'],
  ) {
    super(); // the fields register the two submodules (Module tracks assignments)
  }

  forward(x: Tensor): Tensor {
    return this.head.forward(this.backbone.features(x));
  }

  /** The parameters stage 1 trains, by name. */
  trainableParameters(): [string, Tensor][] {
    return [...this.namedParameters()].filter(([n]) => !this.unusedPrefixes.some((p) => n.startsWith(`backbone.${p}`)));
  }
}

// ---------------------------------------------------------------- losses by name

export type LossFn = (logits: Tensor, labels: Tensor, epoch: number) => Tensor;

export const LOSS_NAMES = ['ce', 'focal', 'cb', 'cb-focal', 'cb-sigmoid', 'ldam', 'balanced-softmax', 'logit-adjusted', 'eql', 'seql'] as const;
export type LossName = (typeof LOSS_NAMES)[number];

export interface LossOptions {
  /** Training instances per class. */
  classCounts: ArrayLike<number>;
  /** DRW (Cao et al.): from this epoch on, class-balanced weights (β = cbBeta) re-weight the loss. */
  drwEpoch?: number;
  /** β of the effective number (Cui et al.): 0.9999 as LDAM-DRW's code. */
  cbBeta?: number;
  focalGamma?: number;
  ldamMaxMargin?: number;
  ldamScale?: number;
  labelSmoothing?: number;
  /** τ of the logit-adjusted loss. */
  tau?: number;
  /** λ (EQL/SEQL tail threshold on class frequency) and γ (SEQL's probability of β = 1). */
  eqlLambda?: number;
  seqlGamma?: number;
  seed?: number;
}

/**
 * The classifier bias a loss starts from, as the official code initialises it (null: the layer's
 * default). Sigmoid losses start every class at a prior probability π, b = −log((1 − π)/π):
 * Cui et al. (class-balanced-loss, cb-sigmoid and cb-focal) use π = 1/C, so b = −log(C − 1);
 * EQL (eql.detectron2, as Focal Loss's RetinaNet) uses π = 0.001, b = −log(999).
 */
export function lossBiasInit(name: string, numClasses: number): number | null {
  if (name === 'cb-sigmoid' || name === 'cb-focal') return numClasses > 1 ? -Math.log(numClasses - 1) : 0;
  if (name === 'eql') return -Math.log((1 - 0.001) / 0.001);
  return null;
}

/** Builds a stage-1 loss by name (`--loss ldam --drw 160`). */
export function lossByName(name: string, o: LossOptions): LossFn {
  check((LOSS_NAMES as readonly string[]).includes(name), 'lossByName', `unknown loss "${name}"; expected one of ${LOSS_NAMES.join(', ')}`);
  const counts = Array.from(o.classCounts);
  const beta = o.cbBeta ?? 0.9999;
  const drw = o.drwEpoch;
  // DRW: uniform weights before drwEpoch, class-balanced after (their `per_cls_weights`)
  const weightsAt = (epoch: number): number[] | undefined => (drw === undefined ? undefined : Array.from(drwWeights(counts, epoch, drw, beta)));
  const total = counts.reduce((a, b) => a + b, 0);
  const tail = tailIndicator(counts.map((n) => n / total), o.eqlLambda ?? 1 / counts.length);
  const rng = new Rng(o.seed ?? 0, 0, STREAMS.stage1Loss);
  switch (name as LossName) {
    case 'ce':
      return (z, y, e) => crossEntropy(z, y, { weights: weightsAt(e), labelSmoothing: o.labelSmoothing });
    case 'focal':
      return (z, y, e) => focalLoss(z, y, { gamma: o.focalGamma ?? 2, weights: weightsAt(e) });
    case 'cb':
      // Cui et al.'s softmax form: Σ_i w_{y_i} CE_i / N (tf.losses.softmax_cross_entropy with
      // per-sample weights averages over the N non-zero weights), not torch's / Σ_i w_{y_i}
      return (z, y) => mulScalar(crossEntropy(z, y, { weights: Array.from(classBalancedWeights(counts, beta)), reduction: 'sum' }), 1 / z.shape[0]);
    case 'cb-focal':
      // Cui et al.'s focal form: sigmoid BCE over one-hot targets, modulated by exp(−γ y z − γ log(1 + e^−z)),
      // weighted by w_{y_i} on every class of sample i, summed and divided by N (Σ labels)
      return (z, y) => sigmoidLoss(z, y, { elementWeights: perSampleWeights(classBalancedWeights(counts, beta), y, counts.length), gamma: o.focalGamma ?? 2 });
    case 'cb-sigmoid':
      // Cui et al.'s sigmoid form: the same without focal modulation (γ = 0)
      return (z, y) => sigmoidLoss(z, y, { elementWeights: perSampleWeights(classBalancedWeights(counts, beta), y, counts.length), gamma: 0 });
    case 'ldam':
      return (z, y, e) => ldamLoss(z, y, counts, { weights: weightsAt(e), maxMargin: o.ldamMaxMargin, scale: o.ldamScale });
    case 'balanced-softmax':
      return (z, y) => logitAdjustedLoss(z, y, counts, { tau: 1 });
    case 'logit-adjusted':
      return (z, y) => logitAdjustedLoss(z, y, counts, { tau: o.tau ?? 1 });
    case 'eql':
      return (z, y) => eqlLoss(z, y, eqlWeights(labelsOf(y), tail));
    case 'seql':
      return (z, y) => seqlLoss(z, y, seqlWeights(labelsOf(y), tail, o.seqlGamma ?? 0.9, rng));
  }
}

/** Host copy of the labels of a batch (the loader supplies them on the host; tensors carry them for the kernels). */
const hostLabels = new WeakMap<Tensor, Int32Array>();
const labelsOf = (y: Tensor): Int32Array => {
  const h = hostLabels.get(y);
  if (!h) throw new OpError('loss', 'this loss needs the labels on the host: create them with labelTensor()');
  return h;
};

/** An i32 label tensor that remembers its host values (EQL/SEQL and CB-sigmoid build per-sample weights from them). */
export function labelTensor(labels: Int32Array, device?: 'webgpu' | 'cpu'): Tensor {
  const t = tensor(labels, [labels.length], { dtype: 'i32', device });
  hostLabels.set(t, labels);
  return t;
}

/** CB-sigmoid: each sample's w_{y_i} repeated over its C sigmoid terms (Cui et al.'s code). */
function perSampleWeights(classWeights: ArrayLike<number>, y: Tensor, c: number): Float32Array {
  const labels = labelsOf(y);
  const out = new Float32Array(labels.length * c);
  labels.forEach((l, i) => out.fill(classWeights[l], i * c, (i + 1) * c));
  return out;
}

// ---------------------------------------------------------------- stage 1

export interface StepLog {
  epoch: number;
  iteration: number;
  itersPerEpoch: number;
  /** Mean loss since the previous log. */
  loss: number;
  lr: number;
  imagesPerSecond: number;
}

export interface Stage1Options {
  model: TwoStageModel;
  optimizer: Optimizer<{ lr: number }>;
  loss: LossFn;
  schedule: Schedule;
  sampler: Sampler;
  loader: BatchLoader;
  batchSize: number;
  epochs: number;
  /** First epoch to run (a resumed run passes the saved epoch + 1). */
  startEpoch?: number;
  /** Samples per epoch (default: the sampler's length). */
  epochLength?: number;
  /** Read the loss back every this many steps (a readback waits for the GPU), and at each epoch's end. */
  logEvery?: number;
  /** Also read it back (and call onLog) once this many seconds passed since the last time (default: never), so a slow epoch still reports. */
  logSeconds?: number;
  /** Whether the schedule advances per iteration (cosine with itersPerEpoch) or per epoch. */
  scheduleByIteration?: boolean;
  onLog?: (log: StepLog) => void;
  /** Called before each epoch with the learning rate of its first step (TDE's momentum schedule). */
  onEpochStart?: (epoch: number, lr: number) => void;
  /** Called after each epoch (checkpointing). */
  onEpochEnd?: (epoch: number, meanLoss: number) => Promise<void> | void;
}

/** Stage 1: joint training of backbone and head. Throws a named error on a non-finite loss. */
export async function trainStage1(o: Stage1Options): Promise<void> {
  const { model, optimizer, sampler, loader } = o;
  const logEvery = o.logEvery ?? 20;
  for (let epoch = o.startEpoch ?? 0; epoch < o.epochs; epoch++) {
    model.train();
    o.onEpochStart?.(epoch, o.schedule(epoch, 0));
    const order = sampler.indices(epoch, o.epochLength);
    const batchSize = o.batchSize;
    const iters = Math.floor(order.length / batchSize);
    let running: Tensor | null = null;
    let since = 0, epochSum = 0, epochCount = 0, it = 0;
    let t0 = performance.now();
    for await (const batch of loader.epoch(order, epoch)) {
      const lr = o.schedule(epoch, o.scheduleByIteration ? Math.min(it, iters - 1) : 0);
      optimizer.setLr(lr);
      const loss = scope(() => {
        const x = tensor(batch.images, batch.shape);
        const y = labelTensor(batch.labels);
        const l = o.loss(model.forward(x), y, epoch);
        l.backward();
        optimizer.step();
        optimizer.zeroGrad();
        return l;
      });
      // accumulate on the device; read back only every logEvery steps
      const sum: Tensor = running ? noGrad(() => binary('add', running!, loss)) : loss;
      if (running) {
        running.dispose();
        loss.dispose();
      }
      running = keep(sum);
      since++;
      it++;
      if (since === logEvery || it === iters || (o.logSeconds !== undefined && performance.now() - t0 >= o.logSeconds * 1000)) {
        const mean = (await running.item()) / since;
        if (!Number.isFinite(mean)) throw new OpError('trainStage1', `the loss became ${mean} at epoch ${epoch}, iteration ${it} (lr ${lr})`);
        const now = performance.now();
        o.onLog?.({ epoch, iteration: it, itersPerEpoch: iters, loss: mean, lr, imagesPerSecond: (since * batchSize * 1000) / (now - t0) });
        epochSum += mean * since;
        epochCount += since;
        running.dispose();
        running = null;
        since = 0;
        t0 = now;
      }
    }
    await o.onEpochEnd?.(epoch, epochCount ? epochSum / epochCount : NaN);
  }
}

// ---------------------------------------------------------------- features, stage 2, evaluation

export interface CachedFeatures {
  /** [N, D] row-major. */
  features: Float32Array;
  labels: Int32Array;
  dim: number;
}

/** Runs the frozen backbone in eval mode over `order` and reads the features back. */
export async function extractFeatures(backbone: Backbone, loader: BatchLoader, order: ArrayLike<number>, onBatch?: (done: number) => void): Promise<CachedFeatures> {
  backbone.eval();
  const dim = backbone.featureDim;
  const features = new Float32Array(order.length * dim);
  const labels = new Int32Array(order.length);
  let at = 0;
  for await (const batch of loader.epoch(order, 0)) {
    const f = noGrad(() => scope(() => backbone.features(tensor(batch.images, batch.shape))));
    features.set(await f.data(), at * dim);
    labels.set(batch.labels, at);
    f.dispose();
    at += batch.labels.length;
    onBatch?.(at);
  }
  check(at === order.length, 'extractFeatures', `the loader returned ${at} of ${order.length} samples (use dropLast: false)`);
  return { features, labels, dim };
}

/**
 * Stage 2 on images (`--stage2-input images`), as the official cRT / LWS / DisAlign runs: each batch
 * of the epoch's order is loaded with the training augmentation by `loaderFor(batchSize)` (the
 * caller's loader, closed by the caller) and runs through the frozen backbone in training mode: no
 * gradient reaches its weights (nothing is recorded), while BatchNorm normalises with the batch's
 * statistics and moves its running statistics, as torch's model.train() with a frozen backbone.
 * The backbone is left in eval mode when the epoch ends.
 */
export function imageBatches(backbone: Backbone, loaderFor: (batchSize: number) => BatchLoader): BatchSource {
  return async function* (order, epoch, batchSize) {
    const loader = loaderFor(batchSize);
    try {
      for await (const batch of loader.epoch(order, epoch)) {
        check(batch.labels.length <= batchSize, 'imageBatches', `the loader gave a batch of ${batch.labels.length} for batches of ${batchSize}`);
        yield {
          rows: Int32Array.from(batch.indices),
          features: () => {
            backbone.train();
            return noGrad(() => backbone.features(tensor(batch.images, batch.shape)));
          },
        };
      }
    } finally {
      backbone.eval();
    }
  };
}

/** A features → logits function (a stage-1 head or a calibration) applied in fixed-size batches. */
export function predictLogits(logits: (x: Tensor) => Tensor, cached: CachedFeatures, batchSize = 256): Promise<Float32Array> {
  return (async () => {
    const n = cached.labels.length;
    let out: Float32Array | null = null;
    for (let i = 0; i < n; i += batchSize) {
      const rows = Math.min(batchSize, n - i);
      const z = noGrad(() => scope(() => logits(tensor(cached.features.subarray(i * cached.dim, (i + rows) * cached.dim), [rows, cached.dim]))));
      const v = await z.data();
      const c = z.shape[1];
      z.dispose();
      out ??= new Float32Array(n * c);
      out.set(v, i * c);
    }
    return out ?? new Float32Array(0);
  })();
}

/** Top-1 / Many / Medium / Few of a features → logits function on cached test features. */
export async function evaluateCached(logits: (x: Tensor) => Tensor, test: CachedFeatures, trainCounts: ArrayLike<number>, batchSize = 256): Promise<LongTailEvaluation> {
  const scores = await predictLogits(logits, test, batchSize);
  return evaluateLongTail(scores, test.labels, trainCounts);
}

/** The cached training features as one device tensor (stage 2 trains on it). */
export const featureTensor = (c: CachedFeatures): Tensor => tensor(c.features, [c.labels.length, c.dim]);
