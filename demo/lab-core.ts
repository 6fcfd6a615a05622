// The long-tail lab's computations, kept apart from the page so that Node runs exactly the same code:
// scripts/test-browser.mjs checks the page's numbers against these functions run under Dawn.
//   - a features file (safetensors, the format `tasks/*.js --export-features` writes) → LabData;
//   - the stage-1 classifier: the file's weight and bias, or a linear head trained on the features;
//   - a calibration by name through the library's `calibrate`, evaluated with `evaluateLongTail`.

import { tensor } from '../kernels/creation.js';
import { check } from '../kernels/errors.js';
import { keep, scope, type Tensor } from '../kernels/tensor.js';
import { decodeSafetensors, rawToTensor, type RawTensor } from '../nn/safetensors.js';
import { calibrate, LinearHead, trainCrt, type CalibrationName, type CalibrationOptions, type Head } from '../longtail/calibration.js';
import { confusionMatrix, evaluateLongTail, predictions, reliability, shotSplits, type LongTailEvaluation, type ReliabilityBin, type ShotSplit } from '../longtail/metrics.js';

export interface Split {
  features: Float32Array;
  labels: Int32Array;
}

export interface LabData {
  /** Where it came from (a file name). */
  source: string;
  dim: number;
  numClasses: number;
  classNames: string[];
  counts: Int32Array;
  train: Split;
  test: Split;
  /** True when the file has no test split and the training features stand in for it. */
  testIsTrain: boolean;
  /** The stage-1 classifier, when the file has a linear one. */
  weight?: Float32Array;
  bias?: Float32Array;
  /** Why the file's classifier is not used, when it is not (e.g. a cosine head's weight). */
  headNote?: string;
}

const fail = (file: string, what: string): never => {
  throw new Error(`${file}: ${what}`);
};

/** A tensor of the file as a host array (floats as f32, integers as i32), with its shape checked by `rank`. */
function hostArray(file: string, tensors: Map<string, RawTensor>, name: string, kind: 'float' | 'int', rank: number): { values: Float32Array | Int32Array; shape: number[] } | null {
  const raw = tensors.get(name);
  if (!raw) return null;
  const floatTypes = ['F32', 'F64', 'F16', 'BF16'], intTypes = ['I32', 'I64', 'U32'];
  if (!(kind === 'float' ? floatTypes : intTypes).includes(raw.dtype) || raw.shape.length !== rank) {
    fail(file, `tensor '${name}' must be a ${rank}-D ${kind === 'float' ? 'float' : 'integer'} tensor, got ${raw.dtype} [${raw.shape.join(', ')}]`);
  }
  const t = rawToTensor(name, raw, 'cpu');
  const values = kind === 'float' ? Float32Array.from(t.cpu as ArrayLike<number>) : Int32Array.from(t.cpu as ArrayLike<number>);
  t.dispose();
  return { values, shape: raw.shape };
}

/**
 * Reads a features file: `features` [N, D] and `labels` [N] (the training set), `counts` [C], and
 * optionally `weight` [C, D] and `bias` [C] (the stage-1 classifier) and `test_features` [M, D] with
 * `test_labels` [M]. Class names come from the metadata key `class_names` (a JSON list) when present.
 * Every problem is one line naming the file and the tensor.
 */
export function parseFeaturesFile(bytes: Uint8Array, file: string): LabData {
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes);
  } catch (e) {
    return fail(file, `not a safetensors file (${(e as Error).message})`);
  }
  const { tensors, metadata } = decoded;
  const need = <T>(v: T | null, name: string): T => v ?? fail(file, `has no tensor '${name}' (a features file holds features [N, D], labels [N] and counts [C]; it has ${[...tensors.keys()].join(', ') || 'none'})`);
  const features = need(hostArray(file, tensors, 'features', 'float', 2), 'features');
  const labels = need(hostArray(file, tensors, 'labels', 'int', 1), 'labels');
  const counts = need(hostArray(file, tensors, 'counts', 'int', 1), 'counts');
  const [N, D] = features.shape;
  const C = counts.shape[0];
  check(N > 0 && D > 0 && C > 1, 'features file', `${file}: needs at least one feature row of at least one value and two classes, got features [${N}, ${D}] and ${C} counts`);
  if (labels.shape[0] !== N) fail(file, `'labels' has ${labels.shape[0]} entries for ${N} feature rows`);
  const checkLabels = (l: Int32Array, name: string): void => {
    const bad = l.findIndex((y) => y < 0 || y >= C);
    if (bad >= 0) fail(file, `'${name}'[${bad}] = ${l[bad]} is outside the ${C} classes of 'counts'`);
  };
  checkLabels(labels.values as Int32Array, 'labels');
  const badCount = (counts.values as Int32Array).findIndex((n) => n <= 0);
  if (badCount >= 0) fail(file, `'counts'[${badCount}] = ${counts.values[badCount]}: every class needs training samples`);
  const weight = hostArray(file, tensors, 'weight', 'float', 2);
  const bias = hostArray(file, tensors, 'bias', 'float', 1);
  if (weight && (weight.shape[0] !== C || weight.shape[1] !== D)) fail(file, `'weight' is [${weight.shape.join(', ')}], the classifier of ${C} classes on ${D}-d features is [${C}, ${D}]`);
  if (bias && bias.shape[0] !== C) fail(file, `'bias' has ${bias.shape[0]} entries for ${C} classes`);
  if (bias && !weight) fail(file, "has a 'bias' but no 'weight'");
  const testFeatures = hostArray(file, tensors, 'test_features', 'float', 2);
  const testLabels = hostArray(file, tensors, 'test_labels', 'int', 1);
  if (!testFeatures !== !testLabels) fail(file, "needs both 'test_features' and 'test_labels', or neither");
  if (testFeatures && testFeatures.shape[1] !== D) fail(file, `'test_features' rows have ${testFeatures.shape[1]} values, 'features' rows ${D}`);
  if (testFeatures && testLabels!.shape[0] !== testFeatures.shape[0]) fail(file, `'test_labels' has ${testLabels!.shape[0]} entries for ${testFeatures.shape[0]} test rows`);
  if (testLabels) checkLabels(testLabels.values as Int32Array, 'test_labels');
  let classNames = Array.from({ length: C }, (_, c) => `class ${c}`);
  if (metadata.class_names) {
    let names: unknown;
    try {
      names = JSON.parse(metadata.class_names);
    } catch {
      fail(file, 'metadata class_names is not JSON');
    }
    if (!Array.isArray(names) || names.length !== C || !names.every((n) => typeof n === 'string')) fail(file, `metadata class_names must list ${C} names`);
    classNames = names as string[];
  }
  const train = { features: features.values as Float32Array, labels: labels.values as Int32Array };
  // --export-features records the head's class: only a linear head's weight and bias are its logits
  const linear = !metadata.head || metadata.head === 'LinearHead';
  return {
    source: file,
    dim: D,
    numClasses: C,
    classNames,
    counts: counts.values as Int32Array,
    train,
    test: testFeatures ? { features: testFeatures.values as Float32Array, labels: testLabels!.values as Int32Array } : train,
    testIsTrain: !testFeatures,
    ...(weight && linear ? { weight: weight.values as Float32Array } : {}),
    ...(bias && linear ? { bias: bias.values as Float32Array } : {}),
    ...(weight && !linear ? { headNote: `its classifier is a ${metadata.head}, whose weight alone does not give its logits` } : {}),
  };
}

/** The methods the lab offers, in the seed talk's order; `learned` ones train on the cached features. */
export const LAB_METHODS: { id: CalibrationName; label: string; learned: boolean }[] = [
  { id: 'ncm', label: 'NCM', learned: false },
  { id: 'taunorm', label: 'τ-norm', learned: false },
  { id: 'logitadjust', label: 'Logit adjustment', learned: false },
  { id: 'crt', label: 'cRT', learned: true },
  { id: 'lws', label: 'LWS', learned: true },
  { id: 'bgs', label: 'Balanced group softmax', learned: true },
  { id: 'disalign', label: 'DisAlign', learned: true },
];

/** The knobs of the lab's sliders, and the seed of every learned method. */
export interface LabParams {
  /** τ of τ-norm. */
  tau: number;
  /** λ of logit adjustment. */
  lambda: number;
  /** ρ of DisAlign's generalized re-weighting. */
  rho: number;
  seed: number;
}

export const DEFAULT_PARAMS: LabParams = { tau: 1, lambda: 1, rho: 1.2, seed: 0 };

/** The library options of one method under these params. */
export function methodOptions(id: CalibrationName, p: LabParams): CalibrationOptions {
  if (id === 'taunorm') return { tau: p.tau };
  if (id === 'logitadjust') return { lambda: p.lambda };
  if (id === 'disalign') return { grwRho: p.rho, seed: p.seed };
  return { seed: p.seed };
}

/** The training features as one tensor on the active backend (kept: the caller disposes it). */
export const trainTensor = (d: LabData): Tensor => keep(tensor(d.train.features, [d.train.labels.length, d.dim]));

/**
 * The stage-1 classifier: the file's weight and bias, or (without them) a linear head trained by
 * instance-balanced SGD on the features (cRT's loop with the instance sampler), said in `trained`.
 */
export async function stage1Head(d: LabData, features: Tensor, seed = 0, onEpoch?: (e: number, n: number, loss: number) => void): Promise<{ head: Head; trained: boolean }> {
  if (d.weight) {
    const head = new LinearHead(d.dim, d.numClasses);
    scope(() => head.loadStateDict({ 'fc.weight': tensor(d.weight!, [d.numClasses, d.dim]), 'fc.bias': tensor(d.bias ?? new Float32Array(d.numClasses), [d.numClasses]) }));
    return { head, trained: false };
  }
  const { head } = await trainCrt(features, d.train.labels, d.numClasses, { sampler: 'instance', seed, onEpoch });
  return { head, trained: true };
}

export interface LabResult {
  evaluation: LongTailEvaluation;
  /** Test scores [M, C] (logits). */
  scores: Float32Array;
  confusion: Int32Array;
  reliability: { bins: ReliabilityBin[]; ece: number };
  losses: readonly number[];
  /** Features → logits of the evaluated classifier, for new inputs. */
  logits: (x: Tensor) => Tensor;
}

/** Scores of `logits` on the test split, in batches, read back once. */
async function testScores(d: LabData, logits: (x: Tensor) => Tensor): Promise<Float32Array> {
  const x = tensor(d.test.features, [d.test.labels.length, d.dim]);
  const out = scope(() => keep(logits(x)));
  x.dispose();
  const values = Float32Array.from(await out.data());
  out.dispose();
  return values;
}

function resultOf(d: LabData, scores: Float32Array, losses: readonly number[], logits: (x: Tensor) => Tensor): LabResult {
  const evaluation = evaluateLongTail(scores, d.test.labels, d.counts);
  return {
    logits,
    evaluation,
    scores,
    confusion: confusionMatrix(predictions(scores, d.numClasses), d.test.labels, d.numClasses),
    reliability: reliability(scores, d.test.labels, d.numClasses),
    losses,
  };
}

/** The stage-1 classifier on the test split. */
export async function evaluateHead(d: LabData, head: Head): Promise<LabResult> {
  const logits = (x: Tensor): Tensor => head.forward(x);
  return resultOf(d, await testScores(d, logits), [], logits);
}

/** Runs one calibration by name through the library and evaluates it on the test split. */
export async function runCalibration(d: LabData, features: Tensor, head: Head, id: CalibrationName, p: LabParams, onEpoch?: (e: number, n: number, loss: number) => void): Promise<LabResult> {
  const calibrated = await calibrate(id, { trainFeatures: features, trainLabels: d.train.labels, classCounts: d.counts, head, options: { ...methodOptions(id, p), onEpoch } });
  // the learnt module is not disposed: τ-norm, LWS and DisAlign wrap the stage-1 head's own parameters
  const scores = await testScores(d, calibrated);
  return resultOf(d, scores, calibrated.epochLosses, calibrated);
}

/** The many / medium / few split of each class by its training count (the library's thresholds). */
export const classSplits = (d: LabData): ShotSplit[] => shotSplits(d.counts);
