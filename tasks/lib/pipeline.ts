// The classification pipeline both tasks run: stage 1 (backbone + head, any sampler and loss),
// feature caching, stage 2 (any calibrations by name, each compared with the stage-1 baseline),
// and the Average / Many / Medium / Few table. Every epoch is checkpointed; --resume continues.

import { init, hasWebGPU, device, runtime, keep, tensor, type Tensor } from '../../index.node.js';
import type { BatchLoader } from '../../data/loader.js';
import { SGD } from '../../nn/optim.js';
import { cosineLr, multiStepLr, constantLr, ldamDrwLr, type Schedule } from '../../nn/schedule.js';
import { resnet18, resnet34, resnet50, resnext50_32x4d, resnet32, CifarResNet } from '../../nn/resnet.js';
import type { TransformStep } from '../../data/augment.js';
import type { DatasetSpec } from '../../data/loader.js';
import { createLoader } from '../../data/node-loader.js';
import { createSampler } from '../../longtail/samplers.js';
import { LinearHead, CosineHead, CausalNormHead, tdeMomentum, type Head } from '../../longtail/heads.js';
import { selectTau } from '../../longtail/calibration.js';
import { Rng, STREAMS } from '../../data/rng.js';
import { calibrate, calibrationHeadMismatch, calibrationName, CALIBRATIONS, type CalibrationOptions } from '../../longtail/calibration.js';
import { constant } from '../../nn/init.js';
import { confusionMatrixSvg } from './plots-summary.js';
import { predictLogits } from '../../longtail/runner.js';
import { TwoStageModel, trainStage1, lossByName, lossBiasInit, extractFeatures, evaluateCached, featureTensor, imageBatches, LOSS_NAMES, type Backbone, type CachedFeatures } from '../../longtail/runner.js';
import { opt } from './cli.js';
import type { Run, MethodResult } from './run.js';
import { TaskError } from './entry.js';
import { formatDuration } from './progress.js';
import { listCheckpoints } from './resume.js';
import { loadCheckpoint, saveCheckpoint } from '../../nn/node-checkpoint.js';
import { loadSafetensors } from '../../nn/safetensors.js';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { appendEpochRow, curvesSvg, CURVES_SVG, EPOCHS_CSV } from './curves.js';
import { encodeSafetensors } from '../../nn/safetensors.js';
import { writeFileAtomic } from '../../nn/node-checkpoint.js';

export const MODELS = ['resnet8', 'resnet32', 'resnet18', 'resnet34', 'resnet50', 'resnext50'] as const;
export type ModelName = (typeof MODELS)[number];

/** The CIFAR ResNet of Cao et al. with n blocks per stage (resnet32: 5, resnet8: 1). */
export function makeBackbone(name: ModelName, numClasses: number): Backbone {
  switch (name) {
    case 'resnet8':
      return new CifarResNet([1, 1, 1], { numClasses });
    case 'resnet32':
      return resnet32({ numClasses });
    case 'resnet18':
      return resnet18({ numClasses });
    case 'resnet34':
      return resnet34({ numClasses });
    case 'resnet50':
      return resnet50({ numClasses });
    case 'resnext50':
      return resnext50_32x4d({ numClasses });
  }
}

/** Options shared by the classification tasks (each task sets its own defaults where they differ). */
export const trainingOptions = {
  sampler: opt.string({ section: 'Stage 1', default: 'instance', help: 'Stage-1 sampler: instance | class | sqrt | pow(q) | progressive | rfs | bilevel.' }),
  loss: opt.enum(LOSS_NAMES, { section: 'Stage 1', default: 'ce', help: 'Stage-1 loss.' }),
  drw: opt.integer({ section: 'Stage 1', min: 0, help: 'DRW: from this epoch on, re-weight the loss with class-balanced weights (LDAM-DRW: 160).' }),
  cbBeta: opt.number({ section: 'Stage 1', default: 0.9999, min: 0, max: 0.999999, help: 'β of the effective number for cb/DRW weights.' }),
  focalGamma: opt.number({ section: 'Stage 1', default: 1, min: 0, help: 'γ of focal and cb-focal (cb-sigmoid is γ = 0, as Cui et al.).' }),
  head: opt.enum(['linear', 'cosine', 'causal', 'normed'], { section: 'Stage 1', help: "Stage-1 classifier: linear (default), cosine (×16, DisAlign*), causal (the causal-norm head TDE needs), or normed: LDAM-DRW's NormedLinear, raw cosines (the default, and the only head, of --loss ldam, which scales them by s = 30)." }),
  eqlLambda: opt.number({ section: 'Stage 1', greaterThan: 0, max: 1, help: 'EQL/SEQL: λ, the class-frequency threshold below which a class is a tail class (default 1/C; eql.detectron2 on LVIS: 0.00177).' }),
  momentum: opt.number({ section: 'Optimisation', default: 0.9, min: 0, max: 1, help: 'SGD momentum.' }),
  weightDecay: opt.number({ section: 'Optimisation', default: 5e-4, min: 0, help: 'SGD weight decay.' }),
  warmup: opt.integer({ section: 'Optimisation', default: 0, min: 0, help: 'Linear warm-up epochs.' }),
  calib: opt.string({ section: 'Stage 2', default: 'disalign', help: `Comma-separated stage-2 calibrations, each compared with the baseline: ${Object.keys(CALIBRATIONS).join(', ')} (or none).` , resumeCheck: false}),
  grwRho: opt.number({ section: 'Stage 2', default: 1.2, min: 0, help: 'DisAlign: ρ of the generalized re-weighting w_c ∝ (1/r_c)^ρ.' , resumeCheck: false}),
  tau: opt.number({ section: 'Stage 2', min: 0, help: 'taunorm: a fixed τ of w_j / ||w_j||^τ. Default: swept over 0…2 in steps of 0.1 and picked on the validation list (--val-list), else on a held-out 20% of each class of the training set (said in the log).' , resumeCheck: false}),
  ncmMetric: opt.enum(['l2', 'cos'], { section: 'Stage 2', default: 'l2', help: 'ncm: l2, the squared distance to the class means (classifier-balancing), or cos, the cosine.' , resumeCheck: false}),
  ncmTransform: opt.enum(['cl2n', 'l2n', 'un'], { section: 'Stage 2', default: 'cl2n', help: 'ncm: features centred on the training mean then L2-normalised (cl2n, official), L2-normalised (l2n) or as they are (un).' , resumeCheck: false}),
  laLambda: opt.number({ section: 'Stage 2', default: 1, help: 'logitadjust: λ of z − λ log ρ.' , resumeCheck: false}),
  tdeAlpha: opt.number({ section: 'Stage 2', min: 0, help: 'tde: α of the counterfactual subtraction (default per dataset, as the official configs: CIFAR-10-LT 1.0, CIFAR-100-LT 1.5, ImageNet-LT and Places-LT 3.0).' , resumeCheck: false}),
  stage2Epochs: opt.integer({ section: 'Stage 2', min: 1, help: 'Epochs of the learned calibrations (default: each method’s own; disalign and bgs take at least 500 steps).' , resumeCheck: false}),
  stage2Input: opt.enum(['cached', 'images'], { section: 'Stage 2', default: 'cached', help: 'What crt, lws and disalign train on: cached, the features of un-augmented training images cached once (fast), or images: augmented training images through the frozen backbone with BatchNorm in training mode each step, as the official runs (the test features are then extracted again after each of them, with its BatchNorm statistics).', resumeCheck: false }),
  seed: opt.integer({ section: 'Run', default: 0, min: 0, help: 'Seed of initialisation, sampling and augmentation.' }),
  workers: opt.integer({ section: 'Run', min: 0, help: 'Decoding worker threads (default min(4, cores − 1); 0 = main thread).', resumeCheck: false }),
  logEvery: opt.integer({ section: 'Run', default: 20, min: 1, help: 'Read the loss back every N steps (and at least once an epoch and every 30 s).', resumeCheck: false }),
  evalEvery: opt.integer({ section: 'Stage 1', min: 1, help: 'With a validation list (--val-list): evaluate on it every N epochs (and after the last); the best epoch by validation top-1 is kept as checkpoints/best.safetensors.', resumeCheck: false }),
  stage1Checkpoint: opt.string({ section: 'Stage 1', metavar: 'FILE|DIR', help: 'Skip stage 1: take the model from this checkpoint (an epoch-XXXX.safetensors, or a run folder: its latest checkpoint), then run stage 2 with any --calib.' }),
  initFrom: opt.string({ section: 'Stage 1', metavar: 'FILE', help: 'Start stage 1 from these weights (a safetensors state dict, e.g. torchvision names from PyTorch: conv1.weight, layer1.0.bn1.running_mean, fc.weight; a DDP "module." prefix is removed), matched by name; missing and unexpected names are reported.' }),
  evalOnly: opt.boolean({ section: 'Stage 1', help: 'No training: evaluate the model of --stage1-checkpoint or --init-from on the test set (the baseline row; add --calib to calibrate it too).' }),
  exportFeatures: opt.boolean({ section: 'Stage 2', help: 'Write features.safetensors in the run folder: the cached training features [N, D] f32, labels [N] i32, counts [C] i32, the stage-1 classifier weight [C, D] and bias [C], test_features and test_labels (for PyTorch and the browser demo).', resumeCheck: false }),
  backend: opt.enum(['webgpu', 'cpu'], { section: 'Run', default: 'webgpu', help: 'webgpu (Dawn on Vulkan; the task stops when no adapter is found) or cpu: the float64 reference backend, about 1.3 img/s for ResNet-8 on 32×32 images on 2 cores, for checks only.', resumeCheck: false }),
};

/** The README's lines that install a WebGPU adapter where there is none. */
export const NO_ADAPTER_MESSAGE =
  'no WebGPU adapter found. On Linux without a GPU, install Mesa lavapipe >= 24 (Debian 12: apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1, ' +
  'after adding bookworm-backports, see the README section "System requirement: a Vulkan driver"), and run with XDG_RUNTIME_DIR set (export XDG_RUNTIME_DIR=/tmp). ' +
  'To train on the slow CPU reference backend instead, pass --backend cpu';

/** Multiply-adds per image of each model at 32×32 (the ImageNet ResNets scale with the pixel count), relative to ResNet-8: the CPU backend's time estimate. */
const RELATIVE_COST: Record<ModelName, number> = { resnet8: 1, resnet32: 5.5, resnet18: 2.9, resnet34: 5.8, resnet50: 6.6, resnext50: 6.8 };
/** The CPU reference backend's measured training rate for ResNet-8 on 32×32 images on 2 cores (img/s). */
export const CPU_RESNET8_RATE = 1.3;

/** Seconds the CPU reference backend needs for `images` training images of `model` at `size`×`size` (an estimate from CPU_RESNET8_RATE). */
export function cpuTrainingEstimate(model: ModelName, size: number, images: number): number {
  return (images * RELATIVE_COST[model] * (size * size) / (32 * 32)) / CPU_RESNET8_RATE;
}

export interface PipelineConfig {
  model: ModelName;
  epochs: number;
  batchSize: number;
  lr: number;
  schedule: 'cosine' | 'multistep' | 'ldam' | 'constant';
  milestones?: number[];
  /** multistep: lr·factors[k−1] after k milestones instead of 0.1^k. */
  factors?: number[];
  sampler: string;
  loss: (typeof LOSS_NAMES)[number];
  drw?: number;
  cbBeta: number;
  focalGamma: number;
  head?: HeadKind;
  eqlLambda?: number;
  momentum: number;
  weightDecay: number;
  warmup: number;
  calib: string;
  grwRho: number;
  tau?: number;
  ncmMetric?: 'l2' | 'cos';
  ncmTransform?: 'cl2n' | 'l2n' | 'un';
  laLambda: number;
  tdeAlpha?: number;
  stage2Epochs?: number;
  stage2Input?: 'cached' | 'images';
  seed: number;
  workers?: number;
  logEvery: number;
  backend?: 'webgpu' | 'cpu';
  exportFeatures?: boolean;
  stage1Checkpoint?: string;
  evalEvery?: number;
  initFrom?: string;
  evalOnly?: boolean;
}

/** The checkpoint file --stage1-checkpoint names: the file, or the latest epoch checkpoint of a run folder. */
export async function stage1CheckpointFile(given: string): Promise<string> {
  let st;
  try {
    st = await stat(given);
  } catch {
    throw new TaskError(`--stage1-checkpoint ${given} does not exist`);
  }
  if (!st.isDirectory()) return given;
  const latest = (await listCheckpoints(given)).at(-1);
  if (!latest) throw new TaskError(`--stage1-checkpoint ${given}: the folder has no ${join('checkpoints', 'epoch-XXXX.safetensors')}`);
  return latest.path;
}

/** Weights by name from a safetensors state dict (PyTorch/torchvision names), for --init-from: a DDP "module." prefix is dropped. */
export async function readInitWeights(file: string): Promise<Map<string, Tensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new TaskError(`--init-from ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let tensors: Map<string, Tensor>;
  try {
    tensors = loadSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  } catch (e) {
    throw new TaskError(`--init-from ${file}: not a safetensors file (${(e as Error).message})`);
  }
  return new Map([...tensors].map(([k, t]) => [k.startsWith('module.') ? k.slice(7) : k, t]));
}

export interface PipelineData {
  train: DatasetSpec;
  test: DatasetSpec;
  numClasses: number;
  classNames?: readonly string[];
  trainTransforms: readonly TransformStep[];
  evalTransforms: readonly TransformStep[];
  mean: readonly number[];
  std: readonly number[];
  /** Training crop size (for the CPU backend's time estimate). */
  imageSize?: number;
  /** A validation list: τ-norm's τ is picked on it. */
  val?: DatasetSpec;
  /** TDE's α when --tde-alpha is not given (the official config of the dataset). */
  tdeAlpha?: number;
  /**
   * The causal head's moving-average momentum: 'fixed' μ = 0.9 (the official CIFAR runs, the
   * default) or 'lr': μ = tdeMomentum(lr) each epoch, as their ImageNet-LT / Places-LT runs.
   */
  tdeMomentum?: 'fixed' | 'lr';
}

/** TDE's α in the official configs (Long-Tailed-Recognition.pytorch and its CIFAR configs). */
export const TDE_ALPHA = { cifar10: 1.0, cifar100: 1.5, 'imagenet-lt': 3.0, 'places-lt': 3.0 } as const;

/** A class-stratified held-out part of the training set: 20% of each class (at least 1 of a class with 2 or more), drawn with `seed`. */
export function heldOutIndices(labels: ArrayLike<number>, numClasses: number, seed: number, fraction = 0.2): Int32Array {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]].push(i);
  const rng = new Rng(seed, 0, STREAMS.heldOut);
  const out: number[] = [];
  for (const idx of byClass) {
    if (idx.length < 2) continue;
    for (let k = idx.length - 1; k > 0; k--) {
      const r = rng.int(k + 1);
      [idx[k], idx[r]] = [idx[r], idx[k]];
    }
    out.push(...idx.slice(0, Math.max(1, Math.round(idx.length * fraction))));
  }
  return Int32Array.from(out.sort((a, b) => a - b));
}

export type HeadKind = 'linear' | 'cosine' | 'causal' | 'normed';

/**
 * The stage-1 head for a loss: --loss ldam runs on LDAM-DRW's NormedLinear (raw cosines; the loss
 * multiplies them by s = 30), and refuses any other head, which would scale unnormalised logits or
 * cosines ×16 by 30 again; other losses default to the linear head.
 */
export function resolveHead(loss: string, head: HeadKind | undefined): HeadKind {
  if (loss === 'ldam') {
    if (head === undefined || head === 'normed') return 'normed';
    const what = head === 'cosine' ? 'cosines already ×16, so logits ×480' : head === 'linear' ? 'unnormalised logits ×30 (losses of 100 and more)' : 'causal-norm logits ×30';
    throw new TaskError(`--loss ldam runs on LDAM-DRW's NormedLinear head (raw cosines, scaled by s = 30 in the loss); --head ${head} would give ${what}. Leave --head out or pass --head normed`);
  }
  return head ?? 'linear';
}

function makeHead(kind: HeadKind, dim: number, classes: number): Head {
  if (kind === 'normed') return new CosineHead(dim, classes, { scale: 1, layout: 'columns' });
  if (kind === 'cosine') return new CosineHead(dim, classes);
  if (kind === 'causal') return new CausalNormHead(dim, classes);
  return new LinearHead(dim, classes);
}

function makeSchedule(c: PipelineConfig, itersPerEpoch: number): { schedule: Schedule; byIteration: boolean } {
  switch (c.schedule) {
    case 'ldam':
      return { schedule: ldamDrwLr(c.lr), byIteration: false };
    case 'multistep':
      return { schedule: multiStepLr({ lr: c.lr, warmupEpochs: c.warmup, milestones: c.milestones ?? [Math.floor(c.epochs * 0.6), Math.floor(c.epochs * 0.8)], ...(c.factors ? { factors: c.factors } : { gamma: 0.1 }) }), byIteration: false };
    case 'constant':
      return { schedule: constantLr(c.lr), byIteration: false };
    case 'cosine':
      return { schedule: cosineLr({ lr: c.lr, epochs: c.epochs, warmupEpochs: c.warmup, itersPerEpoch }), byIteration: true };
  }
}

/**
 * LDAM-DRW's CIFAR schedule for a run of `epochs`: at 200 and more, the official one (5 warm-up
 * epochs, ×0.01 from epoch 160, ×0.0001 from 180); shorter, the same shape scaled (milestones at
 * 80% and 90%, kept strictly increasing so a 1- or 2-epoch run is valid, warm-up at most epochs − 1).
 */
export function ldamScheduleFor(epochs: number): { milestones: number[]; factors: number[]; warmup: number } {
  if (!Number.isSafeInteger(epochs) || epochs < 1) throw new Error(`ldamScheduleFor: epochs must be a positive integer, got ${epochs}`);
  if (epochs >= 200) return { milestones: [160, 180], factors: [0.01, 0.0001], warmup: 5 };
  const first = Math.max(1, Math.round(epochs * 0.8));
  const second = Math.max(first + 1, Math.round(epochs * 0.9));
  return { milestones: [first, second], factors: [0.01, 0.0001], warmup: Math.min(5, epochs - 1) };
}

/** The stage-1 classifier as weight [C, D] and bias [C] (zeros when it has none; a column-layout cosine head transposed). */
async function classifierOf(head: Head): Promise<{ weight: Float32Array; bias: Float32Array }> {
  const C = head.numClasses, D = head.inFeatures;
  if (head instanceof LinearHead) {
    return { weight: Float32Array.from(await head.fc.weight.data()), bias: head.fc.bias ? Float32Array.from(await head.fc.bias.data()) : new Float32Array(C) };
  }
  if (head instanceof CosineHead || head instanceof CausalNormHead) {
    const w = Float32Array.from(await head.weight.data());
    if (head instanceof CosineHead && head.layout === 'columns') {
      const t = new Float32Array(C * D);
      for (let d = 0; d < D; d++) for (let j = 0; j < C; j++) t[j * D + d] = w[d * C + j];
      return { weight: t, bias: new Float32Array(C) };
    }
    return { weight: w, bias: new Float32Array(C) };
  }
  throw new Error(`--export-features: cannot export a ${head.constructor.name}`);
}

/** features.safetensors: features [N, D] f32, labels [N] i32, counts [C] i32, weight [C, D], bias [C], test_features [M, D], test_labels [M] i32. */
export async function exportFeatures(train: CachedFeatures, test: CachedFeatures, counts: ArrayLike<number>, head: Head): Promise<Uint8Array> {
  const { weight, bias } = await classifierOf(head);
  const C = head.numClasses;
  return encodeSafetensors([
    ['features', { dtype: 'F32', shape: [train.labels.length, train.dim], data: train.features }],
    ['labels', { dtype: 'I32', shape: [train.labels.length], data: Int32Array.from(train.labels) }],
    ['counts', { dtype: 'I32', shape: [C], data: Int32Array.from(counts) }],
    ['weight', { dtype: 'F32', shape: [C, head.inFeatures], data: weight }],
    ['bias', { dtype: 'F32', shape: [C], data: bias }],
    ['test_features', { dtype: 'F32', shape: [test.labels.length, test.dim], data: test.features }],
    ['test_labels', { dtype: 'I32', shape: [test.labels.length], data: Int32Array.from(test.labels) }],
  ], { format: 'longtail-features', head: head.constructor.name });
}

const labelsOf = (d: DatasetSpec): Int32Array => d.labels;

/** Selects the backend the run asked for: WebGPU, or a TaskError saying how to install an adapter; the CPU reference backend only with --backend cpu. Tasks call it before opening the run folder. */
export async function selectBackend(backend: 'webgpu' | 'cpu' = 'webgpu') {
  const cpu = backend === 'cpu';
  let dev;
  try {
    dev = await init({ backend: cpu ? 'cpu' : 'webgpu' });
  } catch (e) {
    if (/no adapter/.test((e as Error).message)) throw new TaskError(NO_ADAPTER_MESSAGE);
    throw e;
  }
  if (!dev && !cpu) throw new TaskError(NO_ADAPTER_MESSAGE);
  return dev;
}

/** Runs stage 1 (or resumes it), caches features, runs every stage-2 calibration, writes the results. */
export async function runPipeline(run: Run, c: PipelineConfig, data: PipelineData): Promise<void> {
  const cpu = c.backend === 'cpu';
  const dev = await selectBackend(c.backend);
  run.info(dev ? `WebGPU: ${dev.info.description || dev.info.vendor || 'adapter'} ${dev.info.architecture} (fallback ${dev.info.isFallbackAdapter})` : 'CPU reference backend (--backend cpu)');
  const trainLabels = labelsOf(data.train);
  const counts = new Array<number>(data.numClasses).fill(0);
  for (const y of trainLabels) counts[y]++;
  const empty = counts.findIndex((n) => n === 0);
  if (empty >= 0) throw new Error(`class ${empty}${data.classNames ? ` (${data.classNames[empty]})` : ''} has no training images; every class needs at least one`);
  run.info(`train ${trainLabels.length} images, test ${data.test.labels.length}, ${data.numClasses} classes, counts ${Math.max(...counts)} … ${Math.min(...counts)}`);

  const headKind = resolveHead(c.loss, c.head);
  const backbone = makeBackbone(c.model, data.numClasses);
  const model = new TwoStageModel(backbone, makeHead(headKind, backbone.featureDim, data.numClasses));
  // sigmoid losses start from the official prior bias (cb-sigmoid/cb-focal −log(C − 1), EQL −log(999))
  const biasInit = lossBiasInit(c.loss, data.numClasses);
  if (biasInit !== null && model.head instanceof LinearHead && model.head.fc.bias) {
    constant(model.head.fc.bias, biasInit);
    run.info(`${c.loss}: classifier bias initialised to ${biasInit.toFixed(4)} (the official prior)`);
  }
  // a calibration that cannot use this head fails now, not after stage 1
  const methods = c.evalOnly && c.calib === 'disalign' ? [] : c.calib.split(',').filter((s) => s.trim() && s.trim() !== 'none').map(calibrationName);
  for (const name of methods) {
    const mismatch = calibrationHeadMismatch(name, model.head);
    if (mismatch) throw new Error(`--calib ${name} ${mismatch} (--head ${headKind}); choose --head ${name === 'tde' ? 'causal' : 'linear'} or leave ${name} out`);
  }
  const optimizer = new SGD(model.trainableParameters(), { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay });
  const sampler = createSampler(c.sampler, trainLabels, { seed: c.seed, numClasses: data.numClasses, totalEpochs: c.epochs });
  const loss = lossByName(c.loss, { classCounts: counts, drwEpoch: c.drw, cbBeta: c.cbBeta, focalGamma: c.focalGamma, eqlLambda: c.eqlLambda, seed: c.seed });
  const epochDraws = sampler.indices(0).length;
  // stage 1 needs one full batch an epoch; --eval-only and --stage1-checkpoint train no stage 1
  if (epochDraws < c.batchSize && !c.evalOnly && !c.stage1Checkpoint) throw new TaskError(`--batch-size ${c.batchSize} exceeds the ${epochDraws} draws of an epoch: lower it`);
  const itersPerEpoch = Math.max(1, Math.floor(epochDraws / c.batchSize));
  const { schedule, byIteration } = makeSchedule(c, itersPerEpoch);

  if (c.drw !== undefined && c.drw >= c.epochs) run.warn(`--drw ${c.drw} is not below --epochs ${c.epochs}: the loss is never re-weighted (DRW starts at epoch ${c.drw}, counted from 0)`);
  else if (c.drw !== undefined) run.info(`DRW: class-balanced re-weighting from epoch ${c.drw} (0-based) of ${c.epochs}`);

  let startEpoch = 0;
  // stage-1 time and rate of the sessions before this one (a resumed run adds them up)
  let earlierSeconds = 0;
  let imagesPerSecond = NaN;
  if (c.evalOnly && !c.stage1Checkpoint && !c.initFrom) throw new TaskError('--eval-only evaluates given weights: pass --stage1-checkpoint FILE|DIR or --init-from FILE');
  let skipStage1 = false;
  if (c.initFrom) {
    // torchvision names are the backbone's own (its unused `fc` included); `fc.*` also starts a linear head
    const weights = await readInitWeights(c.initFrom);
    let loaded;
    try {
      loaded = backbone.loadStateDict(weights, { strict: false });
    } catch (e) {
      throw new TaskError(`--init-from ${c.initFrom}: ${(e as Error).message}`);
    }
    // the classifier of the file (torchvision `fc`, the CIFAR ResNets' `linear`) also starts a linear stage-1 head
    let headFrom: string | null = null;
    for (const prefix of ['fc', 'linear']) {
      const w = weights.get(`${prefix}.weight`), b = weights.get(`${prefix}.bias`);
      if (headFrom === null && model.head instanceof LinearHead && w && w.shape.join() === model.head.fc.weight.shape.join()) {
        model.head.loadStateDict(new Map([['fc.weight', w], ...(b && model.head.fc.bias ? [['fc.bias', b] as [string, Tensor]] : [])]), { strict: false });
        headFrom = prefix;
      }
    }
    const unexpected = loaded.unexpectedKeys.filter((k) => headFrom === null || !k.startsWith(`${headFrom}.`));
    run.info(`--init-from ${c.initFrom}: ${weights.size - unexpected.length} of ${weights.size} tensors loaded by name${headFrom ? ` (${headFrom}.* into the stage-1 head)` : ''}; ` +
      `missing (left as initialised): ${loaded.missingKeys.length ? loaded.missingKeys.join(', ') : 'none'}; unexpected (ignored): ${unexpected.length ? unexpected.join(', ') : 'none'}`);
    if (c.evalOnly) skipStage1 = true;
  }
  if (c.stage1Checkpoint) {
    const file = await stage1CheckpointFile(c.stage1Checkpoint);
    const ck = await loadCheckpoint(file);
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      throw new TaskError(`--stage1-checkpoint ${file} does not fit --model ${c.model} with the ${headKind} head: ${(e as Error).message}`);
    }
    if (typeof ck.meta.trainSeconds === 'number') earlierSeconds = ck.meta.trainSeconds;
    if (typeof ck.meta.imagesPerSecond === 'number') imagesPerSecond = ck.meta.imagesPerSecond;
    skipStage1 = true;
    run.info(`stage 1 skipped: the model of ${file}${typeof ck.meta.epoch === 'number' ? ` (epoch ${ck.meta.epoch})` : ''}`);
  }
  const saved = skipStage1 ? null : await run.loadLatestCheckpoint();
  if (skipStage1) startEpoch = c.epochs;
  if (saved) {
    model.loadStateDict(saved.model);
    if (saved.optimizer) optimizer.loadStateDict(saved.optimizer);
    startEpoch = saved.epoch;
    if (typeof saved.meta.trainSeconds === 'number') earlierSeconds = saved.meta.trainSeconds;
    if (typeof saved.meta.imagesPerSecond === 'number') imagesPerSecond = saved.meta.imagesPerSecond;
    run.info(`resumed from ${saved.path} (${saved.epoch} epoch${saved.epoch === 1 ? '' : 's'} done)`);
  }
  if (cpu && startEpoch < c.epochs) {
    const seconds = cpuTrainingEstimate(c.model, data.imageSize ?? 32, (c.epochs - startEpoch) * itersPerEpoch * c.batchSize);
    run.warn(`the CPU reference backend trains slowly: stage 1 (${c.epochs - startEpoch} epochs of ${itersPerEpoch * c.batchSize} ${c.model} images) takes about ${formatDuration(seconds)} ` +
      `(estimated from ${CPU_RESNET8_RATE} img/s for ResNet-8 on 32×32 images on 2 cores); a WebGPU adapter is some 20× faster`);
  }

  const loaderOpts = { mean: data.mean, std: data.std, seed: c.seed, workers: c.workers };
  const trainLoader = createLoader(data.train, { ...loaderOpts, batchSize: c.batchSize, dropLast: true, transforms: data.trainTransforms });
  const started = performance.now();
  const trainSecondsNow = () => earlierSeconds + (performance.now() - started) / 1000;
  // stage 1 over all sessions, as saved with the latest checkpoint (a resumed run adds the earlier sessions' time)
  let stage1Seconds = earlierSeconds;
  let lastLr = NaN;
  // the best validation epoch so far (restored on resume from the checkpoint's meta)
  let best = { epoch: typeof saved?.meta.bestEpoch === 'number' ? saved.meta.bestEpoch : 0, top1: typeof saved?.meta.bestTop1 === 'number' ? saved.meta.bestTop1 : -1 };
  if (c.evalEvery !== undefined && !data.val) throw new TaskError('--eval-every needs a validation list: pass --val-list FILE');
  const valLoader = data.val && c.evalEvery !== undefined ? createLoader(data.val, { ...loaderOpts, batchSize: Math.min(256, c.batchSize * 2), dropLast: false, transforms: data.evalTransforms }) : null;
  const validate = async (epoch: number): Promise<number | null> => {
    if (!valLoader || !data.val || ((epoch + 1) % c.evalEvery! !== 0 && epoch + 1 !== c.epochs)) return null;
    const f = await extractFeatures(backbone, valLoader, Int32Array.from({ length: data.val.labels.length }, (_, i) => i));
    model.eval();
    const e = await evaluateCached((x) => model.head.forward(x), f, counts);
    model.train();
    return e.top1;
  };
  try {
    if (startEpoch < c.epochs) {
      run.info(`stage 1: ${c.model} + ${headKind} head, ${c.loss}${c.drw !== undefined ? ` + DRW@${c.drw}` : ''}, ${c.sampler} sampling, ${c.epochs} epochs of ${itersPerEpoch} × ${c.batchSize}`);
      let bar = run.progress({ label: `epoch ${startEpoch + 1}/${c.epochs}`, total: itersPerEpoch, unit: 'batch' });
      await trainStage1({
        model, optimizer, loss, schedule, sampler, loader: trainLoader, batchSize: c.batchSize, epochs: c.epochs, startEpoch,
        logEvery: c.logEvery, logSeconds: 30, scheduleByIteration: byIteration,
        onEpochStart: (_epoch, lr) => {
          if (model.head instanceof CausalNormHead && data.tdeMomentum === 'lr') {
            model.head.momentum = tdeMomentum(lr);
            run.info(`epoch ${_epoch + 1}: causal head's moving-average momentum μ = ${+model.head.momentum.toFixed(6)} (1 − 0.1·min(50·lr, 1), lr ${+lr.toPrecision(4)}, as the official runs outside CIFAR)`);
          }
        },
        onLog: (l) => {
          // the cold start, launch to the first step read back (exact with --log-every 1; bench/cold-start.js)
          if (l.epoch === startEpoch && l.iteration === 1 && !cpu) {
            const { pipelines, ms } = runtime().compiled;
            run.info(`first step done ${process.uptime().toFixed(1)} s after launch (${pipelines} pipelines, their create calls ${(ms / 1000).toFixed(1)} s)`);
          }
          imagesPerSecond = l.imagesPerSecond;
          lastLr = l.lr;
          bar.update(l.iteration, { loss: l.loss.toFixed(4), lr: l.lr.toPrecision(3), 'img/s': l.imagesPerSecond.toFixed(1) });
        },
        onEpochEnd: async (epoch, meanLoss) => {
          bar.stop();
          stage1Seconds = trainSecondsNow();
          const valTop1 = await validate(epoch);
          if (valTop1 !== null) {
            const improved = valTop1 > best.top1;
            if (improved) {
              best = { epoch: epoch + 1, top1: valTop1 };
              await mkdir(run.path('checkpoints'), { recursive: true });
              await saveCheckpoint(run.path('checkpoints', 'best.safetensors'), { model: model.stateDict(), meta: { epoch: epoch + 1, valTop1 } });
            }
            run.info(`epoch ${epoch + 1}: validation top-1 ${(valTop1 * 100).toFixed(2)}%${improved ? ' (best so far: checkpoints/best.safetensors)' : `; best ${(best.top1 * 100).toFixed(2)}% at epoch ${best.epoch}`}`);
          }
          // the epoch's row first: a run stopped right after its checkpoint has the row too (a rewrite drops rows of epochs redone)
          const rows = await appendEpochRow(run.path(EPOCHS_CSV), { epoch: epoch + 1, meanLoss, lr: lastLr, trainSeconds: stage1Seconds, imagesPerSecond, valTop1: valTop1 ?? NaN });
          await run.writeText(CURVES_SVG, curvesSvg(rows, `${c.model}, ${c.loss}: stage 1`));
          const path = await run.saveCheckpoint({ epoch: epoch + 1, step: (epoch + 1) * itersPerEpoch, model: model.stateDict(), optimizer: optimizer.stateDict(), meta: { meanLoss, trainSeconds: stage1Seconds, imagesPerSecond, bestEpoch: best.epoch, bestTop1: best.top1 } });
          run.info(`epoch ${epoch + 1}/${c.epochs}: mean loss ${meanLoss.toFixed(4)}, ${imagesPerSecond.toFixed(1)} img/s, checkpoint ${path}`);
          if (epoch + 1 < c.epochs) bar = run.progress({ label: `epoch ${epoch + 2}/${c.epochs}`, total: itersPerEpoch, unit: 'batch' });
        },
      });
    }
  } finally {
    await trainLoader.close();
    await valLoader?.close();
  }
  const trainSeconds = stage1Seconds;

  // features of the training set (eval transforms: no augmentation) and of the test set, cached
  const cached = async (name: string, spec: DatasetSpec, save = true): Promise<CachedFeatures> => {
    const hit = save ? await run.loadFeatures(name) : null;
    if (hit && hit.count === spec.labels.length && hit.meta?.epochs === c.epochs) return { features: hit.features, labels: Int32Array.from(hit.labels), dim: hit.dim };
    const loader = createLoader(spec, { ...loaderOpts, batchSize: Math.min(256, c.batchSize * 2), dropLast: false, transforms: data.evalTransforms });
    const bar = run.progress({ label: `features ${name}`, total: spec.labels.length, unit: 'img' });
    try {
      const order = Int32Array.from({ length: spec.labels.length }, (_, i) => i);
      const f = await extractFeatures(backbone, loader, order, (done) => bar.update(done));
      if (save) await run.saveFeatures(name, { ...f, meta: { epochs: c.epochs } });
      return f;
    } finally {
      bar.stop();
      await loader.close();
    }
  };
  const trainF = await cached('train', data.train);
  const testF = await cached('test', data.test);
  const valF = data.val ? await cached('val', data.val) : null;

  if (c.exportFeatures) {
    const path = run.path('features.safetensors');
    await writeFileAtomic(path, await exportFeatures(trainF, testF, counts, model.head));
    run.info(`features, labels, counts and the stage-1 classifier exported to ${path}`);
  }

  model.eval();
  let headline: (x: Tensor) => Tensor = (x) => model.head.forward(x);
  let headlineTestF = testF;
  const results: MethodResult[] = [{ method: `Baseline (${c.loss}${c.drw !== undefined ? '-DRW' : ''})`, evaluation: await evaluateCached((x) => model.head.forward(x), testF, counts) }];
  const trainX: Tensor = keep(featureTensor(trainF));
  const tdeAlpha = c.tdeAlpha ?? data.tdeAlpha;
  const options: CalibrationOptions = { grwRho: c.grwRho, tau: c.tau, lambda: c.laLambda, tdeAlpha, ncmMetric: c.ncmMetric, ncmTransform: c.ncmTransform, seed: c.seed, ...(c.stage2Epochs ? { epochs: c.stage2Epochs } : {}) };
  // --stage2-input images: crt, lws and disalign draw augmented training images through the frozen
  // backbone (BN in training mode); each starts from the stage-1 BN statistics, and is evaluated on
  // test features extracted with the statistics it ended with, as an official stage-2 run.
  const onImages = new Set(c.stage2Input === 'images' ? ['crt', 'lws', 'disalign'] : []);
  const stage2Loaders = new Map<number, BatchLoader>();
  const batchSource = imageBatches(backbone, (batchSize) => {
    let l = stage2Loaders.get(batchSize);
    if (!l) stage2Loaders.set(batchSize, (l = createLoader(data.train, { ...loaderOpts, seed: c.seed + 1, batchSize, dropLast: false, transforms: data.trainTransforms })));
    return l;
  });
  const bnSnapshot = async (): Promise<Map<string, Tensor>> =>
    new Map(await Promise.all(backbone.namedBuffers().map(async ([n, b]) => [n, keep(tensor(await b.data(), b.shape, { dtype: b.dtype }))] as [string, Tensor])));
  if (methods.includes('tde')) run.info(`tde: α = ${tdeAlpha ?? 'the causal head’s'}${c.tdeAlpha === undefined && data.tdeAlpha !== undefined ? ' (the official value for this dataset)' : ''}`);
  try {
    for (const name of methods) {
      const t0 = performance.now();
      let methodOptions = options;
      if (name === 'taunorm' && c.tau === undefined && model.head instanceof LinearHead) {
        // τ swept over 0…2 step 0.1 and picked on validation data, as classifier-balancing
        let x: Tensor, y: Int32Array, what: string;
        if (valF) {
          x = featureTensor(valF);
          y = valF.labels;
          what = `the validation list (${y.length} images)`;
        } else {
          const idx = heldOutIndices(trainF.labels, data.numClasses, c.seed);
          const dim = trainF.dim;
          const f = new Float32Array(idx.length * dim);
          idx.forEach((i, k) => f.set(trainF.features.subarray(i * dim, (i + 1) * dim), k * dim));
          x = featureTensor({ features: f, labels: Int32Array.from(idx, (i) => trainF.labels[i]), dim });
          y = Int32Array.from(idx, (i) => trainF.labels[i]);
          what = `a held-out 20% of each training class (${y.length} images, which stage 1 trained on: no validation list was given)`;
        }
        const sel = await selectTau(model.head.fc, x, y);
        x.dispose();
        run.info(`taunorm: τ = ${sel.tau} picked on ${what}; class-balanced accuracy by τ: ${sel.taus.map((t, k) => `${t}:${(sel.scores[k] * 100).toFixed(1)}`).join(' ')}`);
        methodOptions = { ...options, tau: sel.tau };
      }
      let methodTestF = testF;
      let calibrated: (x: Tensor) => Tensor;
      if (onImages.has(name)) {
        run.info(`${name}: stage 2 on augmented training images through the frozen backbone (BatchNorm in training mode)`);
        const before = await bnSnapshot();
        try {
          calibrated = await calibrate(name, { trainFeatures: trainX, trainLabels: trainF.labels, classCounts: counts, head: model.head, options: { ...methodOptions, batchSource } });
          methodTestF = await cached(`test (${name}'s BatchNorm statistics)`, data.test, false);
        } finally {
          backbone.loadStateDict(before, { strict: false });
          for (const t of before.values()) t.dispose();
          backbone.eval();
        }
      } else {
        calibrated = await calibrate(name, { trainFeatures: trainX, trainLabels: trainF.labels, classCounts: counts, head: model.head, options: methodOptions });
      }
      results.push({ method: name === 'disalign' ? 'DisAlign' : name, evaluation: await evaluateCached(calibrated, methodTestF, counts) });
      headline = calibrated;
      headlineTestF = methodTestF;
      run.info(`stage 2 ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    trainX.dispose();
    for (const l of stage2Loaders.values()) await l.close();
  }

  await run.writeResults({
    results, trainCounts: counts, classNames: data.classNames,
    extra: { epochs: c.epochs, seed: c.seed, ...(best.epoch > 0 ? { best_epoch: best.epoch, best_val_top1: best.top1 } : {}), train_seconds: trainSeconds, images_per_s: Number.isFinite(imagesPerSecond) ? imagesPerSecond : null, backend: hasWebGPU() ? 'webgpu' : 'cpu', adapter: hasWebGPU() ? device().info : null, peak_pool_bytes: hasWebGPU() ? runtime().pool.getStats().peakBytes : 0 },
  });
  // the confusion matrix of the headline method (the last row), classes by training count
  const scores = await predictLogits(headline, headlineTestF);
  const C = data.numClasses;
  const predicted = Int32Array.from({ length: testF.labels.length }, (_, i) => {
    let best = 0;
    for (let j = 1; j < C; j++) if (scores[i * C + j] > scores[i * C + best]) best = j;
    return best;
  });
  await run.writeText('confusion_matrix.svg', confusionMatrixSvg(predicted, testF.labels, counts, { classNames: data.classNames, title: `${results[results.length - 1].method}: confusion matrix (rows normalised)` }).svg);
  run.info(`results in ${run.dir}`);
}
