import { describe, expect, it } from 'vitest';
import { tensor } from '../../kernels/creation.js';
import { conv2d } from '../../autograd/conv-ops.js';
import { addScalar } from '../../autograd/ops.js';
import { labelsFromLogits, slidingWindowInference, wholeInference, windowStarts } from '../../segmentation/inference.js';
import { randomArray, relErr } from '../helpers.js';

describe('inference', () => {
  it('window origins as mmseg slide_inference', () => {
    expect(windowStarts(10, 4, 3)).toEqual([0, 3, 6]);
    expect(windowStarts(11, 4, 3)).toEqual([0, 3, 6, 7]);
    expect(windowStarts(3, 4, 3)).toEqual([0]);
    expect(windowStarts(512, 512, 341)).toEqual([0]);
    expect(windowStarts(683, 512, 341)).toEqual([0, 171]);
  });

  it('a pointwise model gives the same logits whole and by overlapping windows', async () => {
    const H = 11, W = 13;
    const image = tensor(randomArray(3 * H * W), [1, 3, H, W]);
    const weight = tensor(randomArray(4 * 3), [4, 3, 1, 1]);
    const fn = (x: import('../../kernels/tensor.js').Tensor) => addScalar(conv2d(x, weight, null), 0.5);
    const whole = await wholeInference(fn, image);
    const slide = await slidingWindowInference(fn, image, [5, 6], [3, 4]);
    expect(slide.numClasses).toBe(4);
    expect(slide.windows).toBe(windowStarts(H, 5, 3).length * windowStarts(W, 6, 4).length);
    expect(relErr(slide.logits, whole.logits)).toBeLessThan(1e-6);
    const labels = labelsFromLogits(whole.logits, 4, H, W);
    expect(labels.length).toBe(H * W);
  });

  it('averages overlapping windows of a position-dependent model', async () => {
    // the model returns, for every pixel, the window's width: overlapping windows average it
    const image = tensor(new Float32Array(3 * 1 * 5), [1, 3, 1, 5]);
    const fn = (x: import('../../kernels/tensor.js').Tensor) => tensor(new Array(x.shape[3]).fill(x.shape[3] === 3 ? 1 : 0), [1, 1, 1, x.shape[3]]);
    const { logits } = await slidingWindowInference(fn, image, [1, 3], [1, 2]);
    // windows x ∈ [0,3) and [2,5): both full width 3 → all ones
    expect(Array.from(logits)).toEqual([1, 1, 1, 1, 1]);
  });
});
