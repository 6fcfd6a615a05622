// Augmentation of HWC uint8 RGB images, following torchvision's transforms (parameter draws,
// rounding and fallbacks), seeded by a DataRng so a sample's result is reproducible. Sizes are
// [height, width] as in torchvision; a single number means a square (or, for resize, the shorter side).

import { DataRng } from './rng.js';
import type { RgbImage } from './decode.js';

export type Size = number | readonly [number, number];

export type TransformStep =
  | { op: 'randomResizedCrop'; size: Size; scale?: readonly [number, number]; ratio?: readonly [number, number] }
  | { op: 'randomCrop'; size: Size; padding?: number }
  | { op: 'horizontalFlip'; p?: number }
  | { op: 'resize'; size: Size }
  | { op: 'centerCrop'; size: Size }
  /** torchvision ColorJitter(brightness, contrast, saturation, hue = 0): each factor ~ U[max(0, 1 − v), 1 + v]. */
  | { op: 'colorJitter'; brightness?: number; contrast?: number; saturation?: number };

/** A crop window in pixels: the rectangle of an image that a crop or resize reads (not a detection box). */
export interface CropWindow {
  top: number;
  left: number;
  height: number;
  width: number;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
/** The CIFAR statistics used by Cao et al.'s LDAM-DRW code. */
export const CIFAR_MEAN = [0.4914, 0.4822, 0.4465] as const;
export const CIFAR_STD = [0.2023, 0.1994, 0.201] as const;

/** ImageNet-LT / Places-LT / iNaturalist training as classifier-balancing and cvpods:
 * RandomResizedCrop(size) + RandomHorizontalFlip + ColorJitter(0.4, 0.4, 0.4, 0). */
export const imagenetTrainTransforms = (size = 224): TransformStep[] => [
  { op: 'randomResizedCrop', size },
  { op: 'horizontalFlip' },
  { op: 'colorJitter', brightness: 0.4, contrast: 0.4, saturation: 0.4 },
];
/** Evaluation: Resize(shorter side 256) + CenterCrop(224). */
export const imagenetEvalTransforms = (size = 224, resizeTo = 256): TransformStep[] => [{ op: 'resize', size: resizeTo }, { op: 'centerCrop', size }];
/** CIFAR training (Cao et al.): RandomCrop(32, padding=4) + RandomHorizontalFlip. */
export const cifarTrainTransforms = (size = 32, padding = 4): TransformStep[] => [{ op: 'randomCrop', size, padding }, { op: 'horizontalFlip' }];

const hw = (size: Size): [number, number] => (typeof size === 'number' ? [size, size] : [size[0], size[1]]);

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Runs the steps in order; every random draw comes from `rng`. */
export function applyTransforms(image: RgbImage, steps: readonly TransformStep[], rng: DataRng): RgbImage {
  let img = image;
  for (const step of steps) {
    switch (step.op) {
      case 'randomResizedCrop': {
        const [h, w] = hw(step.size);
        img = resizeBilinear(img, h, w, randomResizedCropWindow(img.height, img.width, rng, step.scale, step.ratio));
        break;
      }
      case 'randomCrop':
        img = randomCrop(img, step.size, step.padding ?? 0, rng);
        break;
      case 'horizontalFlip':
        // RandomHorizontalFlip: flip when rand() < p.
        if (rng.random() < (step.p ?? 0.5)) img = horizontalFlip(img);
        break;
      case 'resize': {
        const [h, w] = resizedSize(img.height, img.width, step.size);
        img = resizeBilinear(img, h, w);
        break;
      }
      case 'centerCrop':
        img = centerCrop(img, step.size);
        break;
      case 'colorJitter':
        img = adjustColor(img, colorJitterParams(rng, step.brightness ?? 0, step.contrast ?? 0, step.saturation ?? 0));
        break;
    }
  }
  return img;
}

/** The [height, width] the steps produce from an input of `input` ([h, w]), or undefined when it
 * depends on an unknown input size. */
export function transformedSize(steps: readonly TransformStep[], input?: readonly [number, number]): [number, number] | undefined {
  let size = input ? ([input[0], input[1]] as [number, number]) : undefined;
  for (const step of steps) {
    if (step.op === 'horizontalFlip' || step.op === 'colorJitter') continue;
    if (step.op === 'resize') size = typeof step.size !== 'number' ? hw(step.size) : size && resizedSize(size[0], size[1], step.size);
    else size = hw(step.size);
  }
  return size;
}

/** torchvision RandomResizedCrop.get_params: up to 10 tries of area ~ U(scale)·H·W and log-ratio
 * ~ U(log ratio); w = round(sqrt(area·r)), h = round(sqrt(area/r)); if it fits, top ~ U{0..H−h},
 * left ~ U{0..W−w}; else a center crop with the ratio clamped to the range. */
export function randomResizedCropWindow(
  height: number,
  width: number,
  rng: DataRng,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): CropWindow {
  const area = height * width;
  const logLo = Math.log(ratio[0]), logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.below(height - h + 1);
      const left = rng.below(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < Math.min(...ratio)) h = roundHalfEven(w / Math.min(...ratio));
  else if (inRatio > Math.max(...ratio)) w = roundHalfEven(h * Math.max(...ratio));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** torchvision RandomCrop(size, padding): zero-pad by `padding`, then top ~ U{0..H+2p−h}, left ~ U{0..W+2p−w}. */
export function randomCrop(img: RgbImage, size: Size, padding: number, rng: DataRng): RgbImage {
  const [h, w] = hw(size);
  const paddedH = img.height + 2 * padding, paddedW = img.width + 2 * padding;
  if (h > paddedH || w > paddedW) throw new RangeError(`randomCrop: crop ${h}x${w} is larger than the padded image ${paddedH}x${paddedW}`);
  const top = rng.below(paddedH - h + 1);
  const left = rng.below(paddedW - w + 1);
  return crop(img, { top: top - padding, left: left - padding, height: h, width: w });
}

/** torchvision CenterCrop: top = round((H − h)/2), left = round((W − w)/2); zero padding when larger. */
export function centerCrop(img: RgbImage, size: Size): RgbImage {
  const [h, w] = hw(size);
  return crop(img, { top: roundHalfEven((img.height - h) / 2), left: roundHalfEven((img.width - w) / 2), height: h, width: w });
}

/** The window's pixels; those outside the image are zero. */
export function crop(img: RgbImage, win: CropWindow): RgbImage {
  const { top, left, height, width } = win;
  const out = new Uint8Array(height * width * 3);
  const x0 = Math.max(0, -left), x1 = Math.min(width, img.width - left);
  if (x1 > x0) {
    for (let y = Math.max(0, -top); y < Math.min(height, img.height - top); y++) {
      const src = ((top + y) * img.width + left) * 3;
      out.set(img.data.subarray(src + x0 * 3, src + x1 * 3), (y * width + x0) * 3);
    }
  }
  return { width, height, data: out };
}

export function horizontalFlip(img: RgbImage): RgbImage {
  const { width, height, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3, d = (y * width + width - 1 - x) * 3;
      out[d] = data[s];
      out[d + 1] = data[s + 1];
      out[d + 2] = data[s + 2];
    }
  }
  return { width, height, data: out };
}

/** torchvision Resize(size): an int sets the shorter side, the longer one is int(size·long/short). */
export function resizedSize(height: number, width: number, size: Size): [number, number] {
  if (typeof size !== 'number') return hw(size);
  return width <= height ? [Math.trunc((size * height) / width), size] : [size, Math.trunc((size * width) / height)];
}

/** Bilinear resize of `win` (default: the whole image) to outHeight x outWidth, antialiased when
 * shrinking as PIL's Image.resize(BILINEAR) (which torchvision uses): the triangle filter
 * max(0, 1 − |d|/s) is stretched by s = max(1, in/out). Separable: rows, then columns. */
export function resizeBilinear(img: RgbImage, outHeight: number, outWidth: number, win: CropWindow = { top: 0, left: 0, height: img.height, width: img.width }): RgbImage {
  if (win.top < 0 || win.left < 0 || win.top + win.height > img.height || win.left + win.width > img.width || win.height < 1 || win.width < 1) {
    throw new RangeError(`resizeBilinear: crop window ${JSON.stringify(win)} is not inside the ${img.height}x${img.width} image`);
  }
  const xs = triangleTaps(win.width, outWidth), ys = triangleTaps(win.height, outHeight);
  const src = img.data, rowStride = img.width * 3;
  // Horizontal pass over the window's rows into float, then vertical pass into bytes.
  const tmp = new Float32Array(win.height * outWidth * 3);
  for (let y = 0; y < win.height; y++) {
    const row = (win.top + y) * rowStride + win.left * 3;
    for (let x = 0; x < outWidth; x++) {
      let r = 0, g = 0, b = 0;
      const start = xs.start[x], base = x * xs.taps;
      for (let k = 0; k < xs.count[x]; k++) {
        const wgt = xs.weights[base + k], s = row + (start + k) * 3;
        r += wgt * src[s];
        g += wgt * src[s + 1];
        b += wgt * src[s + 2];
      }
      const t = (y * outWidth + x) * 3;
      tmp[t] = r;
      tmp[t + 1] = g;
      tmp[t + 2] = b;
    }
  }
  const out = new Uint8Array(outHeight * outWidth * 3);
  const line = outWidth * 3;
  for (let y = 0; y < outHeight; y++) {
    const start = ys.start[y], base = y * ys.taps;
    for (let i = 0; i < line; i++) {
      let v = 0;
      for (let k = 0; k < ys.count[y]; k++) v += ys.weights[base + k] * tmp[(start + k) * line + i];
      out[y * line + i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return { width: outWidth, height: outHeight, data: out };
}

interface Taps {
  start: Int32Array;
  count: Int32Array;
  /** `taps` weights per output position. */
  weights: Float32Array;
  taps: number;
}

/** PIL's precompute_coeffs for the bilinear filter: output o covers centre (o + 0.5)·scale. */
function triangleTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  const taps = Math.ceil(stretch) * 2 + 1;
  const start = new Int32Array(outSize), count = new Int32Array(outSize), weights = new Float32Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - stretch + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + stretch + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const w = Math.max(0, 1 - Math.abs((i - center + 0.5) / stretch));
      weights[o * taps + i - lo] = w;
      total += w;
    }
    for (let k = 0; k < hi - lo; k++) weights[o * taps + k] /= total;
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, taps };
}

/** The draws of torchvision's ColorJitter.get_params: `order` = randperm(4) (0 brightness,
 * 1 contrast, 2 saturation, 3 hue, which is never applied here), then each factor ~ U[max(0, 1 − v), 1 + v]
 * in that fixed order (a jitter of 0 is None there: no draw, factor 1). */
export interface ColorJitterParams {
  order: number[];
  brightness: number;
  contrast: number;
  saturation: number;
}

export function colorJitterParams(rng: DataRng, brightness: number, contrast: number, saturation: number): ColorJitterParams {
  for (const [name, v] of [['brightness', brightness], ['contrast', contrast], ['saturation', saturation]] as const) {
    if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`colorJitter: ${name} ${v} is not a non-negative number`);
  }
  const order = [0, 1, 2, 3];
  // torch.randperm(4) as a Fisher-Yates shuffle of our generator.
  for (let i = 3; i > 0; i--) {
    const j = rng.below(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const factor = (v: number) => (v > 0 ? rng.uniform(Math.max(0, 1 - v), 1 + v) : 1);
  const b = factor(brightness), c = factor(contrast), s = factor(saturation);
  return { order, brightness: b, contrast: c, saturation: s };
}

/** torchvision's adjust_brightness / adjust_contrast / adjust_saturation on a float image in [0, 1]
 * (the tensor path), applied in `order`: brightness x·b; contrast c·x + (1 − c)·mean(gray);
 * saturation s·x + (1 − s)·gray(pixel); gray = 0.2989 R + 0.587 G + 0.114 B; every step clamped
 * to [0, 1]. The bytes are read as x/255 and written back rounded once at the end. */
export function adjustColor(img: RgbImage, p: ColorJitterParams): RgbImage {
  const n = img.width * img.height;
  const x = new Float64Array(3 * n);
  for (let i = 0; i < 3 * n; i++) x[i] = img.data[i] / 255;
  const clamp = (v: number) => (v <= 0 ? 0 : v >= 1 ? 1 : v);
  const gray = (i: number) => 0.2989 * x[3 * i] + 0.587 * x[3 * i + 1] + 0.114 * x[3 * i + 2];
  for (const fn of p.order) {
    if (fn === 0 && p.brightness !== 1) {
      for (let i = 0; i < 3 * n; i++) x[i] = clamp(p.brightness * x[i]);
    } else if (fn === 1 && p.contrast !== 1) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += gray(i);
      const m = (1 - p.contrast) * (mean / n);
      for (let i = 0; i < 3 * n; i++) x[i] = clamp(p.contrast * x[i] + m);
    } else if (fn === 2 && p.saturation !== 1) {
      for (let i = 0; i < n; i++) {
        const g = (1 - p.saturation) * gray(i);
        for (let c = 0; c < 3; c++) x[3 * i + c] = clamp(p.saturation * x[3 * i + c] + g);
      }
    }
  }
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < 3 * n; i++) out[i] = Math.round(x[i] * 255);
  return { width: img.width, height: img.height, data: out };
}

/** ToTensor + Normalize: out[c][y][x] = (pixel/255 − mean_c) / std_c, written CHW at `offset`. */
export function normalizeInto(img: RgbImage, mean: readonly number[], std: readonly number[], out: Float32Array, offset = 0): void {
  const n = img.width * img.height, data = img.data;
  if (offset + 3 * n > out.length) throw new RangeError(`normalizeInto: ${3 * n} values at offset ${offset} overflow an array of ${out.length}`);
  for (let c = 0; c < 3; c++) {
    const a = 1 / (255 * std[c]), b = -mean[c] / std[c], o = offset + c * n;
    for (let p = 0; p < n; p++) out[o + p] = data[3 * p + c] * a + b;
  }
}
