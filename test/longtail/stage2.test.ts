import { describe, expect, it } from 'vitest';
import { tensor } from '../../index.node.js';
import { mean, mul } from '../../autograd/ops.js';
import { parameter } from '../../nn/module.js';
import { STAGE2_MIN_ITERATIONS, resolveStage2Options, stage2Epochs, trainOnCachedFeatures } from '../../longtail/stage2.js';

const defaults = { epochs: 10, minIterations: STAGE2_MIN_ITERATIONS, batchSize: 256, lr: 0.1, momentum: 0.9, weightDecay: 5e-4, sampler: 'instance', seed: 0 };

describe('stage-2 budget', () => {
  it('raises the epochs of a small set to reach minIterations steps and keeps the paper\u2019s epochs on a large one', () => {
    const o = resolveStage2Options('test', {}, defaults);
    // 1,236 samples in batches of 256: 5 steps an epoch, so 500 steps take 100 epochs
    expect(stage2Epochs(1236, o)).toBe(100);
    expect(stage2Epochs(1236, { ...o, minIterations: 0 })).toBe(10);
    expect(stage2Epochs(1236, { ...o, minIterations: 51 })).toBe(11);
    // ImageNet-LT: 453 steps an epoch, 4,530 in 10 epochs, above the floor
    expect(stage2Epochs(115_846, o)).toBe(10);
  });

  it('validates the options by name', () => {
    expect(() => resolveStage2Options('lws', { minIterations: -1 }, defaults)).toThrow(/lws: minIterations must be a non-negative integer, got -1/);
    expect(() => resolveStage2Options('crt', { epochs: 0 }, defaults)).toThrow(/crt: epochs must be a positive integer, got 0/);
    expect(() => resolveStage2Options('crt', { batchSize: 2.5 }, defaults)).toThrow(/crt: batchSize must be a positive integer, got 2.5/);
  });

  it('trains for the raised number of epochs, with one mean loss per epoch', async () => {
    const N = 10, D = 2;
    const features = tensor(Float32Array.from({ length: N * D }, (_, i) => (i % 3) - 1), [N, D], { device: 'cpu' });
    const labels = Int32Array.from({ length: N }, (_, i) => i % 2);
    const w = parameter(tensor([1, 1], [1, D], { device: 'cpu' }));
    // minimise mean((w ⊙ x)²): each epoch's loss shrinks
    const run = (minIterations: number) => trainOnCachedFeatures('test', features, labels, 2, [['w', w]], (b) => mean(mul(mul(b.features, w), mul(b.features, w))), { ...defaults, epochs: 2, batchSize: 4, lr: 0.05, minIterations });
    expect(await run(0)).toHaveLength(2);
    const losses = await run(12); // 3 steps an epoch
    expect(losses).toHaveLength(4);
    expect(losses[3]).toBeLessThan(losses[0]);
    // onEpoch reports each epoch's mean loss as it ends, with the epoch count
    const seen: [number, number, number][] = [];
    const reported = await trainOnCachedFeatures('test', features, labels, 2, [['w', w]], (b) => mean(mul(mul(b.features, w), mul(b.features, w))), { ...defaults, epochs: 3, batchSize: 4, lr: 0.05, minIterations: 0, onEpoch: (e, n, l) => seen.push([e, n, l]) });
    expect(seen).toEqual(reported.map((l, e) => [e, 3, l]));
  });
});
