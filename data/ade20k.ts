// ADE20K / SceneParse150 semantic segmentation data, browser-safe: label-map decoding with
// reduce_zero_label, mmsegmentation's training augmentation (RandomResize ratio 0.5–2.0 of a base
// scale, RandomCrop with cat_max_ratio, RandomFlip, PhotoMetricDistortion, Pad), and PNG output of
// predictions as label maps and as colour images with the ADE palette.
// Reference: mmseg/datasets/pipelines/{loading,transforms}.py (0.x) and ADE20KDataset.results2img.
import { decode as decodePng, encode as encodePng } from 'fast-png';
import { ADE20K_PALETTE } from './ade20k-classes.js';
import { resizeBilinear } from './augment.js';
import { decodeImage, type RgbImage } from './decode.js';
import { DataError } from './errors.js';
import type { DataRng } from './rng.js';

export const ADE20K_NUM_CLASSES = 150;
export const IGNORE_INDEX = 255;
/** mmseg's img_norm_cfg for ADE20K (ImageNet statistics on 0..255). */
export const ADE20K_MEAN = [123.675, 116.28, 103.53] as const;
export const ADE20K_STD = [58.395, 57.12, 57.375] as const;

/** A single-channel 8-bit label map, row-major. */
export interface LabelMap {
  width: number;
  height: number;
  data: Uint8Array;
}

/** An image with its label map (same size). */
export interface SegSample {
  image: RgbImage;
  label: LabelMap;
}

/**
 * Decodes an 8-bit label map PNG (greyscale, or palette-indexed: the index is the label) without any
 * colour conversion. Anything else (RGB, 16-bit, alpha) is an error naming the file.
 */
export function decodeLabelMap(bytes: Uint8Array, name: string): LabelMap {
  let png;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new DataError(name, `not a readable PNG label map: ${(e as Error).message}`);
  }
  const { width, height, depth, channels } = png;
  if (channels !== 1 || depth !== 8) throw new DataError(name, `a label map must be 8-bit single-channel (or palette), got ${channels} channel(s) of ${depth} bits`);
  const data = png.data instanceof Uint8Array ? png.data : Uint8Array.from(png.data as ArrayLike<number>);
  if (data.length !== width * height) throw new DataError(name, `label map holds ${data.length} values for ${width}x${height}`);
  return { width, height, data };
}

/**
 * mmseg's reduce_zero_label: 0 ("other") → ignore 255, 1..numClasses → 0..numClasses−1; 255 stays
 * ignored. Any other value is an error naming the file and the pixel.
 */
export function reduceZeroLabel(label: LabelMap, name: string, numClasses = ADE20K_NUM_CLASSES): LabelMap {
  const src = label.data, out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (v === 0 || v === IGNORE_INDEX) out[i] = IGNORE_INDEX;
    else if (v <= numClasses) out[i] = v - 1;
    else throw new DataError(name, `label ${v} at pixel (x ${i % label.width}, y ${Math.floor(i / label.width)}) is above ${numClasses} and not the ignore value ${IGNORE_INDEX}`);
  }
  return { width: label.width, height: label.height, data: out };
}

export interface DecodeSampleOptions {
  /** default true (ADE20K) */
  reduceZeroLabel?: boolean;
  numClasses?: number;
}

/** Decodes an image and its annotation, checks that the sizes agree and the labels are in range. */
export function decodeSegSample(imageBytes: Uint8Array, imageName: string, labelBytes: Uint8Array, labelName: string, opts: DecodeSampleOptions = {}): SegSample {
  const { reduceZeroLabel: reduce = true, numClasses = ADE20K_NUM_CLASSES } = opts;
  const image = decodeImage(imageBytes, imageName);
  let label = decodeLabelMap(labelBytes, labelName);
  if (label.width !== image.width || label.height !== image.height) {
    throw new DataError(labelName, `label map is ${label.width}x${label.height} but its image ${imageName} is ${image.width}x${image.height}`);
  }
  if (reduce) label = reduceZeroLabel(label, labelName, numClasses);
  else {
    for (let i = 0; i < label.data.length; i++) {
      const v = label.data[i];
      if (v >= numClasses && v !== IGNORE_INDEX) throw new DataError(labelName, `label ${v} at pixel ${i} is not a class in [0, ${numClasses}) nor the ignore value ${IGNORE_INDEX}`);
    }
  }
  return { image, label };
}

/** Sorted distinct values of a label map. */
export function labelSet(label: LabelMap | Uint8Array): number[] {
  const data = label instanceof Uint8Array ? label : label.data;
  const seen = new Uint8Array(256);
  for (let i = 0; i < data.length; i++) seen[data[i]] = 1;
  const out: number[] = [];
  for (let v = 0; v < 256; v++) if (seen[v]) out.push(v);
  return out;
}

// ------------------------------------------------------------------ geometry

/** Nearest-neighbour resize of a label map (cv2.INTER_NEAREST: source = ⌊dst · in/out⌋). */
export function resizeLabelNearest(label: LabelMap, outHeight: number, outWidth: number): LabelMap {
  const out = new Uint8Array(outHeight * outWidth);
  const sy = label.height / outHeight, sx = label.width / outWidth;
  const xs = new Int32Array(outWidth);
  for (let x = 0; x < outWidth; x++) xs[x] = Math.min(label.width - 1, Math.floor(x * sx));
  for (let y = 0; y < outHeight; y++) {
    const row = Math.min(label.height - 1, Math.floor(y * sy)) * label.width;
    for (let x = 0; x < outWidth; x++) out[y * outWidth + x] = label.data[row + xs[x]];
  }
  return { width: outWidth, height: outHeight, data: out };
}

/**
 * mmcv.rescale_size with keep_ratio: the largest size with the aspect ratio kept whose long edge is
 * ≤ max(scale) and short edge ≤ min(scale); returns [height, width] rounded as mmcv (int(x + 0.5)).
 */
export function rescaleSize(height: number, width: number, scale: readonly [number, number]): [number, number] {
  const longEdge = Math.max(...scale), shortEdge = Math.min(...scale);
  const factor = Math.min(longEdge / Math.max(height, width), shortEdge / Math.min(height, width));
  return [Math.max(1, Math.floor(height * factor + 0.5)), Math.max(1, Math.floor(width * factor + 0.5))];
}

/** Resizes image (bilinear) and label (nearest) to [height, width]. */
export function resizeSegSample(s: SegSample, height: number, width: number): SegSample {
  return { image: resizeBilinear(s.image, height, width), label: resizeLabelNearest(s.label, height, width) };
}

/** mmseg Resize(img_scale, ratio_range): scale = base · r with r ~ U(lo, hi), then keep-ratio rescale. */
export function randomResize(s: SegSample, baseScale: readonly [number, number], ratioRange: readonly [number, number], rng: DataRng): SegSample {
  const r = rng.uniform(ratioRange[0], ratioRange[1]);
  const [h, w] = rescaleSize(s.image.height, s.image.width, [Math.trunc(baseScale[0] * r), Math.trunc(baseScale[1] * r)]);
  return resizeSegSample(s, h, w);
}

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

function cropLabel(label: LabelMap, b: CropBox): LabelMap {
  const out = new Uint8Array(b.height * b.width);
  for (let y = 0; y < b.height; y++) out.set(label.data.subarray((b.top + y) * label.width + b.left, (b.top + y) * label.width + b.left + b.width), y * b.width);
  return { width: b.width, height: b.height, data: out };
}

function cropImage(img: RgbImage, b: CropBox): RgbImage {
  const out = new Uint8Array(b.height * b.width * 3);
  for (let y = 0; y < b.height; y++) out.set(img.data.subarray(((b.top + y) * img.width + b.left) * 3, ((b.top + y) * img.width + b.left + b.width) * 3), y * b.width * 3);
  return { width: b.width, height: b.height, data: out };
}

export function cropSample(s: SegSample, b: CropBox): SegSample {
  return { image: cropImage(s.image, b), label: cropLabel(s.label, b) };
}

/**
 * mmseg RandomCrop(crop_size, cat_max_ratio): a uniform offset in [0, max(H − h, 0)] × [0, max(W − w, 0)];
 * with cat_max_ratio < 1 the box is redrawn up to 10 times until the crop holds more than one class
 * and no class covers cat_max_ratio or more of its labelled (non-ignored) pixels. The last box drawn
 * is kept, as mmseg does.
 */
export function randomCropBox(label: LabelMap, crop: readonly [number, number], catMaxRatio: number, rng: DataRng, ignoreIndex = IGNORE_INDEX): CropBox {
  const draw = (): CropBox => {
    const mh = Math.max(label.height - crop[0], 0), mw = Math.max(label.width - crop[1], 0);
    const top = rng.below(mh + 1), left = rng.below(mw + 1);
    return { top, left, height: Math.min(crop[0], label.height), width: Math.min(crop[1], label.width) };
  };
  let box = draw();
  if (catMaxRatio < 1) {
    const counts = new Float64Array(256);
    for (let attempt = 0; attempt < 10; attempt++) {
      counts.fill(0);
      for (let y = 0; y < box.height; y++) {
        const row = (box.top + y) * label.width + box.left;
        for (let x = 0; x < box.width; x++) counts[label.data[row + x]]++;
      }
      counts[ignoreIndex] = 0;
      let classes = 0, total = 0, most = 0;
      for (const c of counts) {
        if (c > 0) classes++;
        total += c;
        most = Math.max(most, c);
      }
      if (classes > 1 && most / total < catMaxRatio) break;
      box = draw();
    }
  }
  return box;
}

export function flipSample(s: SegSample): SegSample {
  const { width: w, height: h } = s.image;
  const img = new Uint8Array(s.image.data.length), lab = new Uint8Array(s.label.data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = y * w + x, dst = y * w + (w - 1 - x);
      lab[dst] = s.label.data[src];
      img[3 * dst] = s.image.data[3 * src];
      img[3 * dst + 1] = s.image.data[3 * src + 1];
      img[3 * dst + 2] = s.image.data[3 * src + 2];
    }
  }
  return { image: { width: w, height: h, data: img }, label: { width: w, height: h, data: lab } };
}

export interface PhotometricOptions {
  brightnessDelta?: number;
  contrastRange?: readonly [number, number];
  saturationRange?: readonly [number, number];
  /** in OpenCV's hue units (0..180) */
  hueDelta?: number;
}

/**
 * mmseg PhotoMetricDistortion on 8-bit RGB, each step with probability 1/2: brightness +U(−32, 32);
 * contrast ×U(0.5, 1.5) either first (mode 0) or last (mode 1); saturation ×U(0.5, 1.5) and hue
 * +U(−18, 18) (OpenCV units, 2° each) in HSV. Values are clipped to 0..255 after each step, as
 * mmseg's convert() does; mmseg works in BGR, which changes nothing here (HSV uses both the same way).
 */
export function photometricDistortion(img: RgbImage, rng: DataRng, opts: PhotometricOptions = {}): RgbImage {
  const { brightnessDelta = 32, contrastRange = [0.5, 1.5], saturationRange = [0.5, 1.5], hueDelta = 18 } = opts;
  const px = Float32Array.from(img.data);
  const clip = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);
  const convert = (alpha: number, beta: number): void => {
    for (let i = 0; i < px.length; i++) px[i] = clip(px[i] * alpha + beta);
  };
  if (rng.below(2)) convert(1, rng.uniform(-brightnessDelta, brightnessDelta));
  const mode = rng.below(2);
  const contrast = (): void => {
    if (rng.below(2)) convert(rng.uniform(contrastRange[0], contrastRange[1]), 0);
  };
  if (mode === 1) contrast();
  const doSat = rng.below(2), sat = doSat ? rng.uniform(saturationRange[0], saturationRange[1]) : 1;
  const doHue = rng.below(2), hue = doHue ? rng.below(2 * hueDelta) - hueDelta : 0;
  if (doSat || doHue) {
    for (let p = 0; p < px.length; p += 3) {
      let [h, s, v] = rgbToHsv(px[p] / 255, px[p + 1] / 255, px[p + 2] / 255);
      s = Math.min(1, Math.max(0, s * sat));
      h = (((h + hue * 2) % 360) + 360) % 360;
      const [r, g, b] = hsvToRgb(h, s, v);
      px[p] = r * 255;
      px[p + 1] = g * 255;
      px[p + 2] = b * 255;
    }
  }
  if (mode === 0) contrast();
  const out = new Uint8Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = Math.round(clip(px[i]));
  return { width: img.width, height: img.height, data: out };
}

function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const mx = Math.max(r, g, b), mn = Math.min(r, g, b), d = mx - mn;
  let h = 0;
  if (d > 0) {
    if (mx === r) h = 60 * (((g - b) / d) % 6);
    else if (mx === g) h = 60 * ((b - r) / d + 2);
    else h = 60 * ((r - g) / d + 4);
  }
  return [(h + 360) % 360, mx > 0 ? d / mx : 0, mx];
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const c = v * s, x = c * (1 - Math.abs(((h / 60) % 2) - 1)), m = v - c;
  const k = Math.floor(h / 60) % 6;
  const [r, g, b] = k === 0 ? [c, x, 0] : k === 1 ? [x, c, 0] : k === 2 ? [0, c, x] : k === 3 ? [0, x, c] : k === 4 ? [x, 0, c] : [c, 0, x];
  return [r + m, g + m, b + m];
}

/** mmseg Pad(size, pad_val=0, seg_pad_val=255): pads bottom and right up to [height, width]. */
export function padSample(s: SegSample, height: number, width: number, ignoreIndex = IGNORE_INDEX): SegSample {
  const { width: w, height: h } = s.image;
  if (h >= height && w >= width) return s;
  const H = Math.max(h, height), W = Math.max(w, width);
  const img = new Uint8Array(H * W * 3), lab = new Uint8Array(H * W).fill(ignoreIndex);
  for (let y = 0; y < h; y++) {
    img.set(s.image.data.subarray(y * w * 3, (y + 1) * w * 3), y * W * 3);
    lab.set(s.label.data.subarray(y * w, (y + 1) * w), y * W);
  }
  return { image: { width: W, height: H, data: img }, label: { width: W, height: H, data: lab } };
}

export interface SegTrainAugment {
  /** mmseg img_scale, default (2048, 512) */
  baseScale?: readonly [number, number];
  ratioRange?: readonly [number, number];
  /** [height, width], default 512×512 */
  cropSize?: readonly [number, number];
  catMaxRatio?: number;
  flipProb?: number;
  photometric?: boolean | PhotometricOptions;
  ignoreIndex?: number;
}

/** mmseg's ADE20K train pipeline: Resize → RandomCrop → RandomFlip → PhotoMetricDistortion → Pad. */
export function augmentSegTrain(s: SegSample, rng: DataRng, opts: SegTrainAugment = {}): SegSample {
  const { baseScale = [2048, 512], ratioRange = [0.5, 2.0], cropSize = [512, 512], catMaxRatio = 0.75, flipProb = 0.5, photometric = true, ignoreIndex = IGNORE_INDEX } = opts;
  let out = randomResize(s, baseScale, ratioRange, rng);
  out = cropSample(out, randomCropBox(out.label, cropSize, catMaxRatio, rng, ignoreIndex));
  if (rng.random() < flipProb) out = flipSample(out);
  if (photometric) out = { image: photometricDistortion(out.image, rng, photometric === true ? {} : photometric), label: out.label };
  return padSample(out, cropSize[0], cropSize[1], ignoreIndex);
}

// ------------------------------------------------------------------ output

/**
 * A prediction as an 8-bit greyscale PNG label map. `addOne` (default) writes class c as c + 1, the
 * SceneParse150 submission format (mmseg ADE20KDataset.results2img), so 0 stays "other".
 */
export function encodeLabelPng(pred: ArrayLike<number>, width: number, height: number, { addOne = true } = {}): Uint8Array {
  if (pred.length !== width * height) throw new RangeError(`encodeLabelPng: ${pred.length} labels for ${width}x${height}`);
  const data = new Uint8Array(pred.length);
  for (let i = 0; i < pred.length; i++) {
    const v = pred[i] + (addOne && pred[i] !== IGNORE_INDEX ? 1 : 0);
    if (!(v >= 0 && v <= 255)) throw new RangeError(`encodeLabelPng: label ${pred[i]} at pixel ${i} does not fit 8 bits`);
    data[i] = v;
  }
  return encodePng({ width, height, data, channels: 1, depth: 8 });
}

/** Colours a label map with a palette (default: ADE20K's); the ignore value and unknown classes are black. */
export function colorize(pred: ArrayLike<number>, width: number, height: number, palette: readonly (readonly number[])[] = ADE20K_PALETTE): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const c = palette[pred[i]];
    if (c) {
      data[3 * i] = c[0];
      data[3 * i + 1] = c[1];
      data[3 * i + 2] = c[2];
    }
  }
  return { width, height, data };
}

/** An RGB image as a PNG. */
export function encodeRgbPng(img: RgbImage): Uint8Array {
  return encodePng({ width: img.width, height: img.height, data: img.data, channels: 3, depth: 8 });
}

/** A prediction as a colour PNG with the palette. */
export function encodeColorPng(pred: ArrayLike<number>, width: number, height: number, palette?: readonly (readonly number[])[]): Uint8Array {
  return encodeRgbPng(colorize(pred, width, height, palette));
}
