// Whole-image and sliding-window inference as mmseg's EncoderDecoder (whole_inference,
// slide_inference): the sliding window covers the image with crops of `crop` every `stride`, the
// last row/column of windows shifted back to end at the image border, and averages the logits of
// overlapping windows. Logits are read back per window and accumulated on the host (browser-safe).
import { check, fmtShape } from '../kernels/errors.js';
import { scope, type Tensor } from '../kernels/tensor.js';
import { slice } from '../autograd/ops.js';
import { noGrad } from '../autograd/tape.js';
import { argmaxChannels } from './metrics.js';

/** Maps an image batch [1, 3, h, w] to logits [1, C, h, w] (already upsampled to its input). */
export type LogitsFn = (x: Tensor) => Tensor;

/** Logits of the whole image [1, 3, H, W] → host [C·H·W]. */
export async function wholeInference(fn: LogitsFn, image: Tensor): Promise<{ logits: Float32Array; numClasses: number }> {
  check(image.rank === 4 && image.shape[0] === 1, 'wholeInference', () => `expects one image [1, 3, H, W], got ${fmtShape(image.shape)}`);
  const out = noGrad(() => scope(() => fn(image)));
  check(out.shape[2] === image.shape[2] && out.shape[3] === image.shape[3], 'wholeInference', () => `logits ${fmtShape(out.shape)} are not at the input size ${fmtShape(image.shape)}`);
  const logits = Float32Array.from(await out.data());
  out.dispose();
  return { logits, numClasses: out.shape[1] };
}

/** mmseg's window origins along one axis: ⌈(size − crop)/stride⌉ + 1 windows, the last ending at the border. */
export function windowStarts(size: number, crop: number, stride: number): number[] {
  check(crop > 0 && stride > 0, 'windowStarts', `crop ${crop} and stride ${stride} must be positive`);
  const grids = Math.floor(Math.max(size - crop + stride - 1, 0) / stride) + 1;
  const starts: number[] = [];
  for (let i = 0; i < grids; i++) {
    const end = Math.min(i * stride + crop, size);
    starts.push(Math.max(end - crop, 0));
  }
  return starts;
}

/** Sliding-window logits of [1, 3, H, W] with crops [ch, cw] every [sh, sw] → host [C·H·W], averaged where windows overlap. */
export async function slidingWindowInference(fn: LogitsFn, image: Tensor, crop: readonly [number, number], stride: readonly [number, number]): Promise<{ logits: Float32Array; numClasses: number; windows: number }> {
  check(image.rank === 4 && image.shape[0] === 1, 'slidingWindowInference', () => `expects one image [1, 3, H, W], got ${fmtShape(image.shape)}`);
  const [, ch, H, W] = image.shape;
  const ys = windowStarts(H, crop[0], stride[0]), xs = windowStarts(W, crop[1], stride[1]);
  let sum: Float32Array | null = null;
  let numClasses = 0, windows = 0;
  const count = new Float32Array(H * W);
  for (const y0 of ys) {
    for (const x0 of xs) {
      const h = Math.min(crop[0], H - y0), w = Math.min(crop[1], W - x0);
      const out = noGrad(() => scope(() => fn(slice(image, [0, 0, y0, x0], [1, ch, h, w]))));
      check(out.shape[2] === h && out.shape[3] === w, 'slidingWindowInference', () => `window logits ${fmtShape(out.shape)} are not at the crop size ${h}x${w}`);
      const v = await out.data();
      numClasses = out.shape[1];
      out.dispose();
      sum ??= new Float32Array(numClasses * H * W);
      for (let c = 0; c < numClasses; c++) {
        for (let y = 0; y < h; y++) {
          const dst = c * H * W + (y0 + y) * W + x0, src = (c * h + y) * w;
          for (let x = 0; x < w; x++) sum[dst + x] += v[src + x];
        }
      }
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) count[(y0 + y) * W + x0 + x]++;
      windows++;
    }
  }
  const logits = sum!;
  for (let c = 0; c < numClasses; c++) for (let p = 0; p < H * W; p++) logits[c * H * W + p] /= count[p];
  return { logits, numClasses, windows };
}

/** Per-pixel labels (argmax over classes) of host logits [C·H·W]. */
export const labelsFromLogits = (logits: Float32Array, numClasses: number, height: number, width: number): Int32Array => argmaxChannels(logits, [1, numClasses, height, width]);
