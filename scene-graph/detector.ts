// The entity detector of SGDet: a small Mask R-CNN (detection/) on a narrow ResNet-FPN, trained on
// the scene-graph images' entity boxes and classes, whose top detections per image become the
// relation model's entities (pipeline.ts, `evaluateSgg` in 'sgdet'). Mask R-CNN's losses need
// masks; scene-graph data has boxes only, so each entity's mask is its filled box (the mask branch
// learns nothing SGDet uses). Browser-safe.

import { BackboneWithFPN } from '../detection/backbone.js';
import { MaskRCNN } from '../detection/mask-rcnn.js';
import type { DetectionSample } from '../data/detection-transforms.js';
import type { DeviceOption } from '../nn/layers.js';
import { boxIouLegacy } from './metrics.js';
import type { EntityDetections, SggSample } from './pipeline.js';

export interface EntityDetectorConfig extends DeviceOption {
  /** object classes including the background (index 0) */
  numClasses: number;
  /** the detector's input side: images are resized to it (default 128) */
  inputSize?: number;
  /** ResNet stem / layer1 width (default 16: a narrow ResNet) */
  baseChannels?: number;
  /** FPN channels (default 32) */
  fpnChannels?: number;
  /** detections kept per image, by score (default 10; PySGG keeps 80 on VG150) */
  detectionsPerImage?: number;
}

/**
 * A Mask R-CNN (ResNet-FPN with one basic block per stage, BatchNorm trained from scratch) sized for
 * small images: anchors 8–128 px at a 128 px input (scaled with `inputSize`), PySGG's VG box NMS 0.3
 * and score threshold 0.01.
 */
export function entityDetector(config: EntityDetectorConfig): MaskRCNN {
  const S = config.inputSize ?? 128;
  const backbone = new BackboneWithFPN({ block: 'basic', layers: [1, 1, 1, 1] }, {
    norm: 'batchnorm', trainableLayers: 5, outChannels: config.fpnChannels ?? 32, baseChannels: config.baseChannels ?? 16, device: config.device,
  });
  return new MaskRCNN(backbone, {
    numClasses: config.numClasses, device: config.device, minSize: S, maxSize: S,
    anchorSizes: [8, 16, 32, 64, 128].map((a) => [(a * S) / 128]),
    representationSize: 64, maskLayers: [8], maskDimReduced: 8,
    rpnPreNmsTopNTrain: 600, rpnPostNmsTopNTrain: 200, rpnPreNmsTopNTest: 300, rpnPostNmsTopNTest: 100,
    rpnBatchSizePerImage: 128, boxBatchSizePerImage: 64,
    boxDetectionsPerImg: config.detectionsPerImage ?? 10, boxScoreThresh: 0.01, boxNmsThresh: 0.3,
  });
}

/**
 * A scene-graph image as a detection training sample: its entities' boxes and classes, each mask the
 * filled box. Entities without area are left out; null when none is left.
 */
export function detectionSampleOf(sample: SggSample): DetectionSample | null {
  const S = sample.size, keep: number[] = [];
  for (let k = 0; k < sample.labels.length; k++) if (sample.boxes[4 * k + 2] > sample.boxes[4 * k] && sample.boxes[4 * k + 3] > sample.boxes[4 * k + 1]) keep.push(k);
  if (keep.length === 0) return null;
  const masks = new Uint8Array(keep.length * S * S);
  keep.forEach((k, j) => {
    const [x1, y1, x2, y2] = sample.boxes.subarray(4 * k, 4 * k + 4);
    for (let y = Math.max(0, Math.floor(y1)); y < Math.min(S, Math.ceil(y2)); y++) masks.fill(1, j * S * S + y * S + Math.max(0, Math.floor(x1)), j * S * S + y * S + Math.min(S, Math.ceil(x2)));
  });
  return {
    image: sample.pixels, channels: 3, height: S, width: S, originalSize: [S, S],
    target: { boxes: Float32Array.from(keep.flatMap((k) => Array.from(sample.boxes.subarray(4 * k, 4 * k + 4)))), labels: Int32Array.from(keep, (k) => sample.labels[k]), masks },
  };
}

/** The detector's boxes (in the sample's pixels), labels and scores for each sample; `model` in eval mode. */
export async function detectEntities(model: MaskRCNN, samples: readonly SggSample[], batchSize = 16): Promise<EntityDetections[]> {
  const out: EntityDetections[] = [];
  for (let b = 0; b < samples.length; b += batchSize) {
    const dets = await model.detect(samples.slice(b, b + batchSize).map((s) => ({ image: s.pixels, height: s.size, width: s.size })));
    for (const d of dets) out.push({ boxes: d.boxes, labels: d.labels, scores: d.scores });
  }
  return out;
}

/** Share of GT entities that some detection finds with the right class and IoU ≥ `iou` (legacy +1 IoU, as the SGDet match). */
export function entityRecall(samples: readonly SggSample[], detections: readonly EntityDetections[], iou = 0.5): number {
  let found = 0, total = 0;
  samples.forEach((s, i) => {
    const d = detections[i];
    for (let k = 0; k < s.labels.length; k++, total++) {
      for (let j = 0; j < d.labels.length; j++) {
        if (d.labels[j] === s.labels[k] && boxIouLegacy(s.boxes, k, d.boxes, j) >= iou) { found++; break; }
      }
    }
  });
  return total > 0 ? found / total : NaN;
}
