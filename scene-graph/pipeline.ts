// The scene-graph training / evaluation pipeline shared by `node tasks/vg-sgg.js` and the tests:
// a small CNN feature map, ROI align (torchvision semantics) of the entity boxes and of the union
// box of every ordered pair, the BGNN relation model (or its baseline without message passing),
// PySGG's losses, and PredCls / SGCls / SGDet evaluation into SggEvaluator. Browser-safe.
//
// SGDet as PySGG: the relation model runs on a detector's boxes (its top detections per image),
// with the entity features ROI-aligned from the relation model's own feature map, every ordered
// pair of detected boxes a candidate, and the entity labels and scores those of the detector (they
// also feed the class embedding and the frequency bias); triplets are ranked by
// s_subj · s_pred · s_obj and matched with IoU ≥ 0.5.
//
// Batches use every ordered pair (i ≠ j) of an image's entities as predicate nodes, labelled with
// the GT predicate (one per pair: PySGG's training-time duplicate sampling), 0 for background and
// −1 for relations dropped by bi-level resampling (ignored by the losses).

import { Module } from '../nn/module.js';
import { Conv2d } from '../nn/layers.js';
import { add, flatten, relu, softmax } from '../autograd/ops.js';
import { roiAlign } from '../autograd/detection-ops.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../kernels/creation.js';
import { scopeAsync, type Tensor } from '../kernels/tensor.js';
import { backend, type Backend } from '../kernels/device.js';
import { crossEntropy } from '../longtail/losses.js';
import { BGNN, PAIR_SPATIAL_DIM, batchGraph, encodeBoxInfo, pairSpatialFeatures, rceLoss, relationLoss, unionBoxes, type BgnnConfig, type BgnnOutputs } from './bgnn.js';
import type { SggEvaluator, SggMode } from './metrics.js';

/** One image at the network's input size: CHW pixels, boxes (xyxy) in those pixels. */
export interface SggSample {
  size: number;
  pixels: Float32Array;
  boxes: Float32Array;
  labels: Int32Array;
  relations: Int32Array;
}

export interface SggBatch {
  size: number;
  numImages: number;
  pixels: Float32Array;
  /** per image: number of entities and all ordered pairs (local indices) */
  graphs: { numEntities: number; pairs: Int32Array }[];
  entityRois: Float32Array;
  unionRois: Float32Array;
  boxInfo: Float32Array;
  spatial: Float32Array;
  labels: Int32Array;
  /** per pair (batch order): GT predicate, 0 background, −1 ignored */
  pairLabels: Int32Array;
  subjLabels: Int32Array;
  objLabels: Int32Array;
}

/**
 * Assembles a batch. `relations[i]` overrides sample i's relations (after duplicate sampling and
 * resampling drops, predicate −1 = ignore).
 */
export function makeBatch(samples: readonly SggSample[], relations?: readonly Int32Array[]): SggBatch {
  const S = samples[0].size;
  const pixels = new Float32Array(samples.length * 3 * S * S);
  const graphs: SggBatch['graphs'] = [];
  const eRois: number[] = [], uRois: number[] = [], info: number[] = [], spatial: number[] = [], labels: number[] = [], pairLabels: number[] = [], sl: number[] = [], ol: number[] = [];
  samples.forEach((s, b) => {
    if (s.size !== S) throw new Error(`makeBatch: sample ${b} has size ${s.size}, the batch ${S}`);
    pixels.set(s.pixels, b * 3 * S * S);
    const n = s.labels.length;
    const pairs: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) pairs.push(i, j);
    const pairArr = Int32Array.from(pairs);
    graphs.push({ numEntities: n, pairs: pairArr });
    for (let i = 0; i < n; i++) eRois.push(b, s.boxes[4 * i], s.boxes[4 * i + 1], s.boxes[4 * i + 2], s.boxes[4 * i + 3]);
    const u = unionBoxes(s.boxes, pairArr);
    for (let k = 0; k < pairArr.length / 2; k++) uRois.push(b, u[4 * k], u[4 * k + 1], u[4 * k + 2], u[4 * k + 3]);
    info.push(...encodeBoxInfo(s.boxes, S, S));
    spatial.push(...pairSpatialFeatures(s.boxes, pairArr, S, S));
    labels.push(...s.labels);
    const rel = relations?.[b] ?? s.relations;
    const map = new Map<number, number>();
    for (let k = 0; k < rel.length; k += 3) {
      const key = rel[k] * n + rel[k + 1];
      const prev = map.get(key);
      // a pair keeps its first positive label; an ignored (−1) relation marks the pair ignored unless it also has a kept one
      if (prev === undefined || prev === -1) map.set(key, rel[k + 2]);
    }
    for (let k = 0; k < pairArr.length / 2; k++) {
      const i = pairArr[2 * k], j = pairArr[2 * k + 1];
      pairLabels.push(map.get(i * n + j) ?? 0);
      sl.push(s.labels[i]);
      ol.push(s.labels[j]);
    }
  });
  return {
    size: S, numImages: samples.length, pixels, graphs,
    entityRois: Float32Array.from(eRois), unionRois: Float32Array.from(uRois), boxInfo: Float32Array.from(info), spatial: Float32Array.from(spatial),
    labels: Int32Array.from(labels), pairLabels: Int32Array.from(pairLabels), subjLabels: Int32Array.from(sl), objLabels: Int32Array.from(ol),
  };
}

export interface SggNetConfig extends Omit<BgnnConfig, 'visualDim'> {
  /** channels of the CNN feature map (stride 4) */
  featureChannels?: number;
  /** ROI-align output side */
  poolSize?: number;
}

/** A 2-layer CNN (stride 4) + ROI align + BGNN (or the baseline): the whole relation model. */
export class SggNet extends Module {
  conv1: Conv2d;
  conv2: Conv2d;
  bgnn: BGNN;
  readonly poolSize: number;

  constructor(config: SggNetConfig) {
    super();
    const device: Backend = config.device ?? backend();
    const C = config.featureChannels ?? 32;
    this.poolSize = config.poolSize ?? 3;
    this.conv1 = new Conv2d(3, 16, 3, { stride: 2, padding: 1, device });
    this.conv2 = new Conv2d(16, C, 3, { stride: 2, padding: 1, device });
    this.bgnn = new BGNN({ ...config, visualDim: C * this.poolSize * this.poolSize, device }).enableObjectClassifier();
  }

  forward(batch: SggBatch, givenLabels: boolean): BgnnOutputs {
    const device = this.conv1.weight.device;
    const S = batch.size, B = batch.numImages;
    const fmap = relu(this.conv2.forward(relu(this.conv1.forward(tensor(batch.pixels, [B, 3, S, S], { device })))));
    const pool = { outputSize: this.poolSize, spatialScale: 0.25, samplingRatio: 2, aligned: true };
    const N = batch.labels.length, R = batch.pairLabels.length;
    const ent = flatten(roiAlign(fmap, tensor(batch.entityRois, [N, 5], { device }), pool));
    const uni = R > 0 ? flatten(roiAlign(fmap, tensor(batch.unionRois, [R, 5], { device }), pool)) : tensor([], [0, ent.shape[1]], { device });
    return this.bgnn.forward({
      graph: batchGraph(batch.graphs, device),
      entityFeatures: ent,
      entityBoxInfo: tensor(batch.boxInfo, [N, 9], { device }),
      unionFeatures: uni,
      pairSpatial: tensor(batch.spatial, [R, PAIR_SPATIAL_DIM], { device }),
      entityLabels: givenLabels ? tensor(batch.labels, [N], { dtype: 'i32', device }) : undefined,
    });
  }

  /** Training loss: predicate CE (with frequency bias on the GT labels) + RCE losses + object CE (both object classifiers). */
  loss(batch: SggBatch): Tensor {
    const out = this.forward(batch, true);
    const bias = this.bgnn.frequencyBias(batch.subjLabels, batch.objLabels);
    let loss = relationLoss(bias ? add(out.relLogits, bias) : out.relLogits, batch.pairLabels);
    for (const l of out.rceLogits) loss = add(loss, rceLoss(l, batch.pairLabels, this.bgnn.cfg.numPredicates));
    const y = tensor(batch.labels, [batch.labels.length], { dtype: 'i32', device: out.relLogits.device });
    if (out.objLogits) loss = add(loss, crossEntropy(out.objLogits, y));
    if (out.objLogitsInitial) loss = add(loss, crossEntropy(out.objLogitsInitial, y));
    return loss;
  }
}

/** A detector's entities for one image, in the image's pixels (the same frame as SggSample.boxes). */
export interface EntityDetections {
  /** xyxy, n×4 */
  boxes: Float32Array;
  /** 1-based object classes */
  labels: Int32Array;
  scores: Float32Array;
}

/** The relation model's input for SGDet: the image with the detected boxes and labels as its entities (no relations). */
export function detectedSample(sample: SggSample, det: EntityDetections): SggSample {
  const n = det.labels.length;
  if (det.boxes.length !== 4 * n || det.scores.length !== n) throw new Error(`detectedSample: ${det.boxes.length / 4} boxes, ${n} labels and ${det.scores.length} scores disagree`);
  return { size: sample.size, pixels: sample.pixels, boxes: det.boxes, labels: det.labels, relations: new Int32Array(0) };
}

/** Predictions of one batch, per image, in the form SggEvaluator takes. */
export interface BatchPrediction {
  labels: Int32Array;
  objScores: Float32Array;
  pairs: Int32Array;
  relScores: Float32Array;
}

/**
 * Runs the model on a batch without gradients and reads back per-image predictions.
 * PredCls: GT labels, object scores 1. SGCls: labels and scores from the refined object classifier
 * (arg-max over the foreground classes); the frequency bias then uses the predicted labels.
 * SGDet: the batch's entities are detections (detectedSample), their labels given and their
 * scores `entityScores` (batch order).
 */
export async function predictBatch(net: SggNet, batch: SggBatch, mode: SggMode, entityScores?: Float32Array): Promise<BatchPrediction[]> {
  return scopeAsync(async () => {
    const P1 = net.bgnn.cfg.numPredicates + 1, C = net.bgnn.cfg.numObjClasses;
    const N = batch.labels.length, R = batch.pairLabels.length;
    let labels = batch.labels, scores: Float32Array = new Float32Array(N).fill(1);
    if (mode === 'sgdet') {
      if (entityScores?.length !== N) throw new Error(`predictBatch: SGDet needs a score for each of the ${N} detected entities, got ${entityScores?.length ?? 'none'}`);
      scores = entityScores;
      // a batch of images without any detection: nothing to run the model on
      if (N === 0) return batch.graphs.map(() => ({ labels: new Int32Array(0), objScores: new Float32Array(0), pairs: new Int32Array(0), relScores: new Float32Array(0) }));
    }
    const out = noGrad(() => net.forward(batch, mode !== 'sgcls'));
    let subj = batch.subjLabels, obj = batch.objLabels;
    if (mode === 'sgcls') {
      const probs = await noGrad(() => softmax(out.objLogits!)).data();
      labels = new Int32Array(N);
      scores = new Float32Array(N);
      for (let i = 0; i < N; i++) {
        let best = 1;
        for (let c = 2; c < C; c++) if (probs[i * C + c] > probs[i * C + best]) best = c;
        labels[i] = best;
        scores[i] = probs[i * C + best];
      }
      subj = new Int32Array(R);
      obj = new Int32Array(R);
      let k = 0, off = 0;
      for (const g of batch.graphs) {
        for (let q = 0; q < g.pairs.length / 2; q++, k++) { subj[k] = labels[off + g.pairs[2 * q]]; obj[k] = labels[off + g.pairs[2 * q + 1]]; }
        off += g.numEntities;
      }
    }
    const rel = R > 0 ? await noGrad(() => {
      const bias = net.bgnn.frequencyBias(subj, obj);
      return softmax(bias ? add(out.relLogits, bias) : out.relLogits);
    }).data() : new Float32Array(0);
    const result: BatchPrediction[] = [];
    let eOff = 0, pOff = 0;
    for (const g of batch.graphs) {
      const np = g.pairs.length / 2;
      result.push({
        labels: labels.slice(eOff, eOff + g.numEntities),
        objScores: scores.slice(eOff, eOff + g.numEntities),
        pairs: g.pairs,
        relScores: Float32Array.from(rel.subarray(pOff * P1, (pOff + np) * P1)),
      });
      eOff += g.numEntities;
      pOff += np;
    }
    return result;
  });
}

/**
 * Evaluates `samples` in batches into `evaluator` (whose mode must match). Returns the predictions,
 * whose pairs index the GT entities (PredCls, SGCls) or the detections (SGDet). SGDet needs
 * `detections`, one per sample; an image with fewer than 2 detections has no pair to predict.
 */
export async function evaluateSgg(net: SggNet, samples: readonly SggSample[], evaluator: SggEvaluator, batchSize = 16, detections?: readonly EntityDetections[]): Promise<BatchPrediction[]> {
  const mode = evaluator.mode;
  if (mode === 'sgdet' && detections?.length !== samples.length) throw new Error(`evaluateSgg: SGDet needs the detections of each of the ${samples.length} images, got ${detections?.length ?? 'none'}`);
  const was = net.training;
  net.eval();
  const all: BatchPrediction[] = [];
  try {
    for (let b = 0; b < samples.length; b += batchSize) {
      const chunk = samples.slice(b, b + batchSize);
      const dets = detections?.slice(b, b + batchSize);
      const inputs = mode === 'sgdet' ? chunk.map((s, i) => detectedSample(s, dets![i])) : chunk;
      const scores = mode === 'sgdet' ? Float32Array.from(dets!.flatMap((d) => Array.from(d.scores))) : undefined;
      const preds = await predictBatch(net, makeBatch(inputs), mode, scores);
      preds.forEach((p, i) => {
        const s = chunk[i];
        evaluator.add({ boxes: s.boxes, labels: s.labels, relations: s.relations }, { boxes: inputs[i].boxes, labels: p.labels, objScores: p.objScores, pairs: p.pairs, relScores: p.relScores }, b + i);
        all.push(p);
      });
    }
  } finally {
    if (was) net.train();
  }
  return all;
}
