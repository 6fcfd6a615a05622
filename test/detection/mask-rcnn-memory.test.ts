import { describe, expect, it } from 'vitest';
import { DataRng, SGD, detectionBatch, hasWebGPU, liveTensorCount, manualSeed, maskrcnnResnetFpn, runtime, scopeAsync, totalLoss, type DetectionSample } from '../../index.node.js';

/** An image with n filled squares of side `side` along the diagonal, their boxes and masks. */
function squares(S: number, n: number, side: number): DetectionSample {
  const image = new Float32Array(3 * S * S).fill(0.1);
  const masks = new Uint8Array(n * S * S), boxes = new Float32Array(n * 4), labels = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const o = Math.floor((k * (S - side)) / Math.max(n - 1, 1));
    for (let y = o; y < o + side; y++) {
      for (let x = o; x < o + side; x++) {
        image[y * S + x] = 0.9;
        masks[k * S * S + y * S + x] = 1;
      }
    }
    boxes.set([o, o, o + side, o + side], k * 4);
    labels[k] = 1 + (k % 2);
  }
  return { image, channels: 3, height: S, width: S, originalSize: [S, S], target: { boxes, labels, masks } };
}

describe('Mask R-CNN training memory', () => {
  // proposal, sampled and positive counts change every step (the batches differ and the weights
  // move), so tensor sizes do too: the pool must reuse and retire buffers instead of growing
  it('keeps the pool and the live tensors flat over steps with varying proposal counts', { timeout: 600_000 }, async () => {
    // the buffer pool is the WebGPU backend's
    if (!hasWebGPU()) return;
    manualSeed(2);
    const model = maskrcnnResnetFpn({ block: 'basic', layers: [1, 1, 1, 1] }, {
      baseChannels: 8, outChannels: 8, numClasses: 3, representationSize: 16, maskLayers: [8], maskDimReduced: 8,
      minSize: 64, maxSize: 64, rpnPreNmsTopNTrain: 200, rpnPostNmsTopNTrain: 60, rpnBatchSizePerImage: 32, boxBatchSizePerImage: 32, trainableLayers: 5,
    }).train();
    const batches = [[1, 14], [3, 10], [2, 20], [4, 8]].map(([n, side]) => detectionBatch([squares(64, n, side), squares(64, 5 - n, 2 * side)], { minSize: [64], maxSize: 64, flipProb: 0 }, new DataRng(n)));
    const opt = new SGD(model.trainableParameters(), { lr: 0.02, momentum: 0.9 });
    const rng = new DataRng(3);
    const pool: number[] = [], live: number[] = [];
    for (let step = 0; step < 12; step++) {
      await scopeAsync(async () => {
        const total = totalLoss(await model.losses(batches[step % batches.length], rng));
        total.backward();
        opt.step();
        opt.zeroGrad();
      });
      await runtime().sync();
      pool.push(runtime().pool.getStats().totalBytes);
      live.push(liveTensorCount());
    }
    console.log('pool bytes per step', pool.join(' '), '| live tensors', live.join(' '));
    // the pool rises while steps with more proposals and positives than any before arrive, then
    // holds: after 7 warm-up steps it grows by under 1% (the earlier pool, which kept buffers of
    // every size class ever seen, grew 3% over these steps, to 69 MB against 36 MB now)
    expect(pool[11]).toBeLessThan(1.01 * pool[6]);
    expect(new Set(live.slice(1)).size).toBe(1);
  });
});
