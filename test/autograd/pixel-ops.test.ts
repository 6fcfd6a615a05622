import { describe, expect, it } from 'vitest';
import { tensor, hasWebGPU, scope } from '../../index.node.js';
import { OP_GROUPS } from '../../autograd/table.js';
import { softmaxAxis, logSoftmaxAxis, pixelCrossEntropy, upsampleNearest } from '../../autograd/pixel-ops.js';
import { gradcheck, inp, ints, fixed } from './gradcheck.js';
import { relErr } from '../helpers.js';
import PRIMS from '../fixtures/prims/prims.js';

// every entry pixel-ops.ts registers (group 'pixel') must have a case below
const covered = new Set<string>();
const gc = (entry: string, name: string, f: Parameters<typeof gradcheck>[0], inputs: Parameters<typeof gradcheck>[1]) => {
  covered.add(entry);
  it(`${name}: backward matches finite differences and the GPU matches the CPU`, async () => {
    await gradcheck(f, inputs);
  });
};

const LABELS = [0, 2, 255, 1, 1, 255, 2, 0, 2, 1, 0, 255];

describe('pixel ops', () => {
  gc('softmaxAxis', 'softmaxAxis over the channels of [2, 3, 2, 2]', ([x]) => softmaxAxis(x, 1), [inp([2, 3, 2, 2], -2, 2)]);
  gc('softmaxAxis', 'softmaxAxis along the last axis', ([x]) => softmaxAxis(x, -1), [inp([3, 5], -2, 2)]);
  gc('logSoftmaxAxis', 'logSoftmaxAxis over axis 0 of [4, 3, 1]', ([x]) => logSoftmaxAxis(x, 0), [inp([4, 3, 1], -2, 2)]);
  gc('pixelCrossEntropy', 'pixelCrossEntropy mean with ignore_index 255 and class weights', ([z, y, w]) => pixelCrossEntropy(z, y, { ignoreIndex: 255, weight: w }),
    [inp([2, 3, 2, 3], -2, 2), ints(LABELS, [2, 2, 3]), fixed([3], 0.5, 2)]);
  gc('pixelCrossEntropy', 'pixelCrossEntropy none (per pixel)', ([z, y]) => pixelCrossEntropy(z, y, { ignoreIndex: 255, reduction: 'none' }), [inp([2, 3, 2, 3], -2, 2), ints(LABELS, [2, 2, 3])]);
  gc('pixelCrossEntropy', 'pixelCrossEntropy sum over the last axis of [4, 3]', ([z, y]) => pixelCrossEntropy(z, y, { axis: -1, reduction: 'sum', ignoreIndex: 255 }), [inp([4, 3], -2, 2), ints([2, 255, 0, 1], [4])]);
  gc('upsampleNearest', 'upsampleNearest by scale 2', ([x]) => upsampleNearest(x, { scaleFactor: 2 }), [inp([2, 2, 3, 2])]);
  gc('upsampleNearest', 'upsampleNearest to an odd size (up in H, down in W)', ([x]) => upsampleNearest(x, { size: [5, 2] }), [inp([1, 2, 3, 4])]);

  it('every pixel entry of the op table has a gradient check', () => {
    expect([...OP_GROUPS].filter(([k, g]) => g === 'pixel' && !covered.has(k)).map(([k]) => k)).toEqual([]);
    expect(OP_GROUPS.get('pixelCrossEntropy')).toBe('pixel');
  });

  it('pixelCrossEntropy matches torch (F.cross_entropy: ignore_index, weights, mean/sum/none) and its gradient', async () => {
    for (const device of ['cpu', ...(hasWebGPU() ? ['webgpu' as const] : [])] as ('cpu' | 'webgpu')[]) {
      for (const c of PRIMS.crossEntropy) {
        const z = tensor(c.logits, c.shape, { device }).requireGrad();
        const labelShape = [c.shape[0], ...c.shape.slice(2)];
        const y = tensor(c.labels, labelShape, { dtype: 'i32', device });
        const reduction = c.reduction as 'mean' | 'sum' | 'none';
        const loss = scope(() => {
          const l = pixelCrossEntropy(z, y, { ignoreIndex: c.ignoreIndex, weight: c.weight ?? undefined, reduction });
          l.backward(reduction === 'none' ? tensor(c.upstream, labelShape, { device }) : undefined);
          return l;
        });
        expect(relErr(await loss.data(), c.loss), `${device} loss ${c.shape} ${reduction}`).toBeLessThan(1e-5);
        expect(relErr(await z.grad!.data(), c.grad), `${device} grad ${c.shape} ${reduction}`).toBeLessThan(1e-5);
        z.dispose();
      }
    }
  });

  it('mean over only ignored pixels is NaN (0/0, as torch)', async () => {
    const l = pixelCrossEntropy(tensor([1, 2, 3, 4], [1, 2, 2]), tensor([255, 255], [1, 2], { dtype: 'i32' }), { ignoreIndex: 255 });
    expect(Number.isNaN(await l.item())).toBe(true);
  });
});
