// Detection transforms that keep an image, its boxes and its masks consistent, on CPU typed arrays,
// with torchvision's semantics (models/detection/transform.py GeneralizedRCNNTransform, and the
// detection references' RandomHorizontalFlip):
// - normalise: (x − mean) / std per channel;
// - resize: scale = min(min_size / min(h, w), max_size / max(h, w)) in float32 (as torch divides a
//   Python float by a float32 tensor: min_size · (1 / min(h, w))); output size
//   floor(side · scale); the image bilinear (align_corners false, source x = (x + ½)·in/out − ½),
//   masks nearest (source x = floor(x · in/out)), boxes times new/old per axis (float32 ratios);
// - horizontal flip: image columns reversed, boxes x1' = W − x2, x2' = W − x1, masks flipped,
//   polygons x' = W − x;
// - batching: every image zero-padded at the bottom and right to the batch's largest height and
//   width rounded up to a multiple of 32, keeping each image's original and resized size.
// Images are Float32Array CHW; boxes Float32Array [N, 4] as x1, y1, x2, y2; masks Uint8Array
// [N, H, W] row-major. Random choices come from a DataRng, so a seed reproduces them. Browser-safe.
import type { CocoAnnotation, CocoImage } from './coco.js';
import { maskToRowMajor, rleDecode, segmentationToRle } from './masks.js';
import type { DataRng } from './rng.js';
import { nearestIndex } from '../kernels/dims.js';

export interface DetectionTarget {
  /** [N, 4] x1, y1, x2, y2 in pixels of the current image. */
  boxes: Float32Array;
  labels: Int32Array;
  /** [N, H, W] binary masks, row-major, at the current image size. */
  masks?: Uint8Array;
  /** Per instance, its polygons (x0, y0, x1, y1, …) in pixels of the current image (empty for RLE instances). */
  polygons?: number[][][];
  iscrowd?: Uint8Array;
}

export interface DetectionSample {
  /** CHW float32. */
  image: Float32Array;
  channels: number;
  height: number;
  width: number;
  target: DetectionTarget;
  /** The size the image had when read, [height, width]. */
  originalSize: [number, number];
}

const f32 = Math.fround;

/** A detection target from COCO annotations: xywh boxes → xyxy, category ids as labels, masks decoded. */
export function targetFromCoco(anns: readonly CocoAnnotation[], image: CocoImage, { masks = true, labelOf = (c: number) => c }: { masks?: boolean; labelOf?: (categoryId: number) => number } = {}): DetectionTarget {
  const n = anns.length;
  const boxes = new Float32Array(n * 4);
  anns.forEach((a, i) => boxes.set([a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]], i * 4));
  const target: DetectionTarget = {
    boxes,
    labels: Int32Array.from(anns, (a) => labelOf(a.categoryId)),
    iscrowd: Uint8Array.from(anns, (a) => (a.iscrowd ? 1 : 0)),
    polygons: anns.map((a) => (Array.isArray(a.segmentation) ? a.segmentation.map((p) => [...p]) : [])),
  };
  if (masks) {
    const { height: H, width: W } = image;
    const out = new Uint8Array(n * H * W);
    anns.forEach((a, i) => {
      if (!a.segmentation) throw new RangeError(`targetFromCoco: annotation ${a.id} has no segmentation for its mask`);
      out.set(maskToRowMajor(rleDecode(segmentationToRle(a.segmentation, H, W)), H, W), i * H * W);
    });
    target.masks = out;
  }
  return target;
}

/** (x − mean[c]) / std[c] in float32, in place; returns the sample. */
export function normalizeSample(sample: DetectionSample, mean: readonly number[], std: readonly number[]): DetectionSample {
  const { image, channels, height, width } = sample;
  if (mean.length !== channels || std.length !== channels) throw new RangeError(`normalizeSample: mean/std have ${mean.length}/${std.length} values for ${channels} channels`);
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const m = f32(mean[c]);
    const s = f32(std[c]);
    for (let i = c * plane; i < (c + 1) * plane; i++) image[i] = f32(f32(image[i] - m) / s);
  }
  return sample;
}

/** GeneralizedRCNNTransform's resize: the scale (float32) and the output [height, width]. */
export function resizeScale(height: number, width: number, minSize: number, maxSize: number): { scale: number; size: [number, number] } {
  const lo = f32(Math.min(height, width));
  const hi = f32(Math.max(height, width));
  // a Python float over a float32 tensor is computed by torch as reciprocal-then-multiply:
  // 9 / 7 gives 1.2857143878936768 (not the nearest float32 of 9/7), and 7 × that floors to 9
  const scale = Math.min(f32(f32(1 / lo) * minSize), f32(f32(1 / hi) * maxSize));
  return { scale, size: [Math.floor(height * scale), Math.floor(width * scale)] };
}

/** Bilinear source indices and weights along one axis (PyTorch's upsample_bilinear2d, align_corners false, float32 index math). */
function linearAxis(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; l1: Float32Array } {
  const scale = f32(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l1 = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    let src = f32(scale * (o + 0.5) - 0.5); // float scale, double arithmetic, stored as float (as ATen)
    if (src < 0) src = 0;
    const i = Math.trunc(src);
    i0[o] = i;
    i1[o] = i < inSize - 1 ? i + 1 : i;
    l1[o] = Math.min(Math.max(f32(src - i), 0), 1);
  }
  return { i0, i1, l1 };
}

/** Nearest source indices along one axis (PyTorch's legacy 'nearest': floor(o · in/out) in float32). */
function nearestAxis(inSize: number, outSize: number): Int32Array {
  const scale = f32(inSize / outSize);
  return Int32Array.from({ length: outSize }, (_, o) => nearestIndex(o, inSize, outSize, scale));
}

/** Bilinear resize of a CHW float image. */
export function resizeImageBilinear(image: Float32Array, channels: number, height: number, width: number, outHeight: number, outWidth: number): Float32Array {
  const ys = linearAxis(height, outHeight);
  const xs = linearAxis(width, outWidth);
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    const src = c * height * width;
    const dst = c * outHeight * outWidth;
    for (let oy = 0; oy < outHeight; oy++) {
      const r0 = src + ys.i0[oy] * width;
      const r1 = src + ys.i1[oy] * width;
      const h1 = ys.l1[oy];
      const h0 = f32(1 - h1);
      for (let ox = 0; ox < outWidth; ox++) {
        const w1 = xs.l1[ox];
        const w0 = f32(1 - w1);
        const a = xs.i0[ox];
        const b = xs.i1[ox];
        out[dst + oy * outWidth + ox] = h0 * (w0 * image[r0 + a] + w1 * image[r0 + b]) + h1 * (w0 * image[r1 + a] + w1 * image[r1 + b]);
      }
    }
  }
  return out;
}

/** Nearest resize of [N, H, W] masks. */
export function resizeMasksNearest(masks: Uint8Array, n: number, height: number, width: number, outHeight: number, outWidth: number): Uint8Array {
  const ys = nearestAxis(height, outHeight);
  const xs = nearestAxis(width, outWidth);
  const out = new Uint8Array(n * outHeight * outWidth);
  for (let k = 0; k < n; k++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const row = k * height * width + ys[oy] * width;
      const dst = k * outHeight * outWidth + oy * outWidth;
      for (let ox = 0; ox < outWidth; ox++) out[dst + ox] = masks[row + xs[ox]];
    }
  }
  return out;
}

/** Boxes (x1, y1, x2, y2) from an image of `from` [h, w] to `to` [h, w] (torchvision resize_boxes; postprocess uses it backwards). */
export function resizeBoxes(boxes: Float32Array, from: readonly [number, number], to: readonly [number, number]): Float32Array {
  const rh = f32(f32(to[0]) / f32(from[0]));
  const rw = f32(f32(to[1]) / f32(from[1]));
  return boxes.map((v, i) => v * (i % 2 === 0 ? rw : rh));
}

/** GeneralizedRCNNTransform.resize: shorter side to minSize unless the longer would pass maxSize. */
export function resizeSample(sample: DetectionSample, minSize: number, maxSize: number): DetectionSample {
  const { height: h, width: w, channels } = sample;
  const { size } = resizeScale(h, w, minSize, maxSize);
  const [oh, ow] = size;
  const t = sample.target;
  const n = t.labels.length;
  const sx = ow / w;
  const sy = oh / h;
  return {
    ...sample,
    image: resizeImageBilinear(sample.image, channels, h, w, oh, ow),
    height: oh,
    width: ow,
    target: {
      ...t,
      boxes: resizeBoxes(t.boxes, [h, w], [oh, ow]),
      masks: t.masks ? resizeMasksNearest(t.masks, n, h, w, oh, ow) : undefined,
      // polygons follow the image's geometry (the same ratio the boxes use)
      polygons: t.polygons?.map((ps) => ps.map((p) => p.map((v, i) => v * (i % 2 === 0 ? sx : sy)))),
    },
  };
}

/** Horizontal flip of the image, boxes (x1' = W − x2, x2' = W − x1), masks and polygons (x' = W − x). */
export function horizontalFlipSample(sample: DetectionSample): DetectionSample {
  const { image, channels, height: H, width: W } = sample;
  const out = new Float32Array(image.length);
  for (let r = 0; r < channels * H; r++) for (let x = 0; x < W; x++) out[r * W + x] = image[r * W + W - 1 - x];
  const t = sample.target;
  const boxes = new Float32Array(t.boxes.length);
  for (let i = 0; i < t.boxes.length; i += 4) boxes.set([W - t.boxes[i + 2], t.boxes[i + 1], W - t.boxes[i], t.boxes[i + 3]], i);
  let masks: Uint8Array | undefined;
  if (t.masks) {
    masks = new Uint8Array(t.masks.length);
    const rows = t.masks.length / W;
    for (let r = 0; r < rows; r++) for (let x = 0; x < W; x++) masks[r * W + x] = t.masks[r * W + W - 1 - x];
  }
  const polygons = t.polygons?.map((ps) => ps.map((p) => p.map((v, i) => (i % 2 === 0 ? W - v : v))));
  return { ...sample, image: out, target: { ...t, boxes, masks, polygons } };
}

/** RandomHorizontalFlip(p): flips when rng.random() < p. */
export function randomHorizontalFlipSample(sample: DetectionSample, rng: DataRng, p = 0.5): DetectionSample {
  return rng.random() < p ? horizontalFlipSample(sample) : sample;
}

/** A batch: images zero-padded into one [B, C, H, W] tensor, with each image's sizes. */
export interface ImageList {
  tensor: Float32Array;
  batch: number;
  channels: number;
  height: number;
  width: number;
  /** [height, width] of each image after resizing (before padding), as torchvision's ImageList.image_sizes. */
  imageSizes: [number, number][];
  /** [height, width] of each image as read. */
  originalSizes: [number, number][];
  targets: DetectionTarget[];
}

/** GeneralizedRCNNTransform.batch_images: pad to the largest height and width, rounded up to a multiple of sizeDivisible. */
export function batchImages(samples: readonly DetectionSample[], sizeDivisible = 32): ImageList {
  if (samples.length === 0) throw new RangeError('batchImages: no images');
  const C = samples[0].channels;
  for (const s of samples) if (s.channels !== C) throw new RangeError(`batchImages: images have ${C} and ${s.channels} channels`);
  const H = Math.ceil(Math.max(...samples.map((s) => s.height)) / sizeDivisible) * sizeDivisible;
  const W = Math.ceil(Math.max(...samples.map((s) => s.width)) / sizeDivisible) * sizeDivisible;
  const tensor = new Float32Array(samples.length * C * H * W);
  samples.forEach((s, b) => {
    for (let c = 0; c < C; c++) for (let y = 0; y < s.height; y++) tensor.set(s.image.subarray((c * s.height + y) * s.width, (c * s.height + y + 1) * s.width), ((b * C + c) * H + y) * W);
  });
  return { tensor, batch: samples.length, channels: C, height: H, width: W, imageSizes: samples.map((s) => [s.height, s.width]), originalSizes: samples.map((s) => s.originalSize), targets: samples.map((s) => s.target) };
}

export interface DetectionTransformOptions {
  /** Shorter-side sizes; training draws one per image, evaluation uses the last (torchvision). Default [800]. */
  minSize?: readonly number[];
  /** Longer-side cap (default 1333). */
  maxSize?: number;
  /** Per-channel mean and std in the image's units (default ImageNet's, for images in [0, 1]). */
  mean?: readonly number[];
  std?: readonly number[];
  sizeDivisible?: number;
  /** Horizontal flip probability in training (default 0.5). */
  flipProb?: number;
}

/**
 * The whole input pipeline of a torchvision R-CNN: (training: random flip), normalise, resize,
 * batch. `rng` given = training (flip and min-size draws, in that order per image); absent =
 * evaluation (no flip, the last min size).
 */
export function detectionBatch(samples: readonly DetectionSample[], options: DetectionTransformOptions = {}, rng?: DataRng): ImageList {
  const minSizes = options.minSize ?? [800];
  const maxSize = options.maxSize ?? 1333;
  const mean = options.mean ?? [0.485, 0.456, 0.406];
  const std = options.std ?? [0.229, 0.224, 0.225];
  const out = samples.map((s0) => {
    let s: DetectionSample = { ...s0, image: s0.image.slice() };
    if (rng) s = randomHorizontalFlipSample(s, rng, options.flipProb ?? 0.5);
    normalizeSample(s, mean, std);
    const size = rng ? minSizes[Math.min(minSizes.length - 1, Math.floor(rng.random() * minSizes.length))] : minSizes[minSizes.length - 1];
    return resizeSample(s, size, maxSize);
  });
  return batchImages(out, options.sizeDivisible ?? 32);
}
