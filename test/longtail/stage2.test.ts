import { describe, expect, it } from 'vitest';
import { tensor, type Tensor } from '../../index.node.js';
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

describe('stage 2 on images (--stage2-input images)', () => {
  it('runs augmented images through the frozen backbone: its weights stay, its BatchNorm running statistics move', async () => {
    const { CifarResNet } = await import('../../nn/resnet.js');
    const { InThreadLoader } = await import('../../data/loader.js');
    const { imageBatches } = await import('../../longtail/runner.js');
    const { trainCrt, trainLws, trainDisAlign } = await import('../../longtail/calibration.js');
    const { LinearHead } = await import('../../longtail/heads.js');
    const N = 12, H = 8, C = 3;
    const labels = Int32Array.from({ length: N }, (_, i) => (i < 6 ? 0 : i < 10 ? 1 : 2));
    const images = Uint8Array.from({ length: N * H * H * 3 }, (_, i) => (i * 37 + Math.floor(i / (H * H * 3)) * 91) % 256);
    const spec = { kind: 'pixels' as const, images, labels, height: H, width: H, numClasses: C };
    const backbone = new CifarResNet([1, 1, 1], { numClasses: C });
    backbone.eval();
    const snapshot = async (named: [string, Tensor][]) => new Map(await Promise.all(named.map(async ([n, t]) => [n, Array.from(await t.data())] as [string, number[]])));
    const weights0 = await snapshot([...backbone.namedParameters()]);
    const buffers0 = await snapshot(backbone.namedBuffers());
    const loaders: InstanceType<typeof InThreadLoader>[] = [];
    const batchSizes: number[] = [];
    const seenRows: number[] = [];
    const source = imageBatches(backbone, (batchSize) => {
      batchSizes.push(batchSize);
      const l = new InThreadLoader(spec, { batchSize, transforms: [{ op: 'randomCrop', size: H, padding: 2 }, { op: 'horizontalFlip' }], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], seed: 1 });
      loaders.push(l);
      return l;
    });
    const counting: typeof source = async function* (order, epoch, batchSize) {
      for await (const b of source(order, epoch, batchSize)) {
        seenRows.push(...b.rows);
        yield b;
      }
    };
    // the cached features only give the shape and device here: the batches come from the images
    const cached = tensor(new Float32Array(N * backbone.featureDim), [N, backbone.featureDim]);
    const crt = await trainCrt(cached, labels, C, { epochs: 2, batchSize: 4, batchSource: counting });
    expect(crt.epochLosses).toHaveLength(2);
    expect(crt.epochLosses.every(Number.isFinite)).toBe(true);
    // class-aware draws in full batches of 4 (drop-last): every row came from the loader
    expect(seenRows.length % 4).toBe(0);
    expect(seenRows.length).toBeGreaterThanOrEqual(2 * 8);
    expect(new Set(seenRows).size).toBeGreaterThan(C);
    expect(batchSizes).toEqual([4, 4]);
    const stage1Head = new LinearHead(backbone.featureDim, C);
    const lws = await trainLws(stage1Head, cached, labels, { epochs: 1, batchSize: 4, batchSource: counting });
    const dis = await trainDisAlign(stage1Head, cached, labels, [6, 4, 2], { epochs: 1, minIterations: 0, batchSize: 4, batchSource: counting });
    expect([...lws.epochLosses, ...dis.epochLosses].every(Number.isFinite)).toBe(true);
    // frozen: not one weight moved; BatchNorm in training mode: running mean/var and the batch count did
    expect(await snapshot([...backbone.namedParameters()])).toEqual(weights0);
    const buffers1 = await snapshot(backbone.namedBuffers());
    for (const [name, before] of buffers0) {
      if (/running_(mean|var)$/.test(name)) expect(buffers1.get(name), name).not.toEqual(before);
    }
    const tracked = [...buffers1].find(([n]) => n.endsWith('num_batches_tracked'))!;
    // one BatchNorm update per batch of the three methods (DisAlign's instance epoch: 12 rows, 3 batches)
    expect(seenRows.length).toBeGreaterThan(N);
    expect(tracked[1][0]).toBe(buffers0.get(tracked[0])![0] + Math.ceil(seenRows.length / 4));
    // and the backbone is back in eval mode
    expect(backbone.training).toBe(false);
    for (const l of loaders) await l.close();
    cached.dispose();
  });
});
