// What the Mask R-CNN box-classification suites share: a tiny ResNet-FPN Mask R-CNN over C = 4
// foreground classes and one 48×64 training image with two boxes and their masks.
import { hasWebGPU, maskrcnnResnetFpn, type DetectionSample, type MaskRCNNOptions, type Tensor } from '../../index.node.js';
import { randomArray } from '../helpers.js';

export const dev = (): 'cpu' | 'webgpu' => (hasWebGPU() ? 'webgpu' : 'cpu');
/** Foreground classes of the tiny model. */
export const C = 4;

/** The tiny model with a box-classification strategy (`more` overrides its options). */
export const tiny = (boxClassification: MaskRCNNOptions['boxClassification'], more: MaskRCNNOptions = {}) => maskrcnnResnetFpn({ block: 'basic', layers: [1, 1, 1, 1] }, {
  outChannels: 8, numClasses: C + 1, representationSize: 16, maskLayers: [8], maskDimReduced: 8, minSize: 48, maxSize: 64,
  rpnPreNmsTopNTrain: 100, rpnPostNmsTopNTrain: 50, rpnPreNmsTopNTest: 100, rpnPostNmsTopNTest: 50, rpnBatchSizePerImage: 32, boxBatchSizePerImage: 32,
  trainableLayers: 5, boxClassification, device: dev(), ...more,
});

/** A 48×64 image of noise with two annotated rectangles (classes 1 and 3) and their masks. */
export function sample(): DetectionSample {
  const H = 48, W = 64;
  const image = Float32Array.from(randomArray(3 * H * W), (v) => 0.5 + 0.2 * v);
  const rects = [[4, 6, 30, 40, 1], [34, 10, 60, 30, 3]];
  const masks = new Uint8Array(rects.length * H * W);
  rects.forEach(([x1, y1, x2, y2], k) => { for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) masks[k * H * W + y * W + x] = 1; });
  return { image, channels: 3, height: H, width: W, originalSize: [H, W], target: { boxes: Float32Array.from(rects.flatMap((r) => r.slice(0, 4))), labels: Int32Array.from(rects, (r) => r[4]), masks } };
}

export const values = async (t: Tensor): Promise<Float32Array> => (await t.data()) as Float32Array;
