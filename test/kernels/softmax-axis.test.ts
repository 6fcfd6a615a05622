import { describe, expect, it } from 'vitest';
import { softmaxAxis, logSoftmaxAxis, softmaxAxisBackward, logSoftmaxAxisBackward, softmaxCrossEntropy, tensor, hasWebGPU } from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts } from '../helpers.js';

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const values = async (t: { data(): Promise<ArrayLike<number>> }): Promise<number[]> => Array.from(await t.data());

// [shape, axis]: per-pixel (axis 1), size-1 dims, the last axis (row kernels), the first axis
const CASES: [number[], number][] = [[[2, 5, 3, 4], 1], [[1, 1, 1, 1], 1], [[1, 7, 1, 9], 1], [[3, 4, 5], 2], [[6, 2, 3], 0], [[2, 19, 7], -2], [[4, 300], 1]];

describe('softmax along an axis', () => {
  it('gives known values per pixel', async () => {
    // [1, 2, 1, 2]: two pixels, two classes
    const x = tensor([0, 1, Math.log(3), 1], [1, 2, 1, 2]);
    const y = await values(softmaxAxis(x, 1));
    expect(y[0]).toBeCloseTo(0.25, 6);
    expect(y[2]).toBeCloseTo(0.75, 6);
    expect(y[1]).toBeCloseTo(0.5, 6);
    expect((await values(logSoftmaxAxis(x, 1)))[3]).toBeCloseTo(Math.log(0.5), 6);
  });

  it('matches the CPU reference forward and backward, with large and -inf logits', async () => {
    for (const [shape, axis] of CASES) {
      const v = randomArray(size(shape), -30, 30);
      v[0] = -Infinity;
      const [g, c] = pair(v, shape);
      const [gd, cd] = pair(randomArray(size(shape)), shape);
      const ys = [softmaxAxis(g, axis), softmaxAxis(c, axis)];
      expect(await compare(ys[0], ys[1])).toBeLessThan(1e-5);
      expect(await compare(softmaxAxisBackward(ys[0], gd, axis), softmaxAxisBackward(ys[1], cd, axis))).toBeLessThan(1e-5);
      const [lg, lc] = pair(randomArray(size(shape), -30, 30), shape);
      const ls = [logSoftmaxAxis(lg, axis), logSoftmaxAxis(lc, axis)];
      expect(await compare(ls[0], ls[1])).toBeLessThan(1e-5);
      expect(await compare(logSoftmaxAxisBackward(ls[0], gd, axis), logSoftmaxAxisBackward(ls[1], cd, axis))).toBeLessThan(1e-5);
    }
  });
});

describe('softmaxCrossEntropy', () => {
  it('matches the CPU reference with ignored pixels and class weights', async () => {
    for (const [shape, axis] of CASES) {
      const a = axis < 0 ? axis + shape.length : axis;
      const C = shape[a];
      const lshape = shape.filter((_, i) => i !== a);
      const labels = randomInts(size(lshape), 0, C + 1).map((v) => (v >= C ? 255 : v));
      const [gz, cz] = pair(randomArray(size(shape), -5, 5), shape);
      const [gl, cl] = pair(labels, lshape, 'i32');
      const [gw, cw] = pair(randomArray(C, 0.1, 2), [C]);
      for (const weighted of [false, true]) {
        const g = softmaxCrossEntropy(gz, gl, { axis, ignoreIndex: 255, weight: weighted ? gw : undefined });
        const c = softmaxCrossEntropy(cz, cl, { axis, ignoreIndex: 255, weight: weighted ? cw : undefined });
        expect(await compare(g.loss, c.loss)).toBeLessThan(1e-5);
        expect(await compare(g.grad, c.grad)).toBeLessThan(1e-5);
        expect(await compare(g.weight, c.weight)).toBeLessThan(1e-6);
      }
    }
  });

  it('ignored pixels give 0 loss, 0 weight and 0 gradient; labels out of range throw on the CPU and are ignored on the GPU', async () => {
    const z = randomArray(2 * 3 * 2);
    const [gz, cz] = pair(z, [2, 3, 2]);
    const [gl, cl] = pair([1, -100, 2, 0], [2, 2], 'i32');
    const c = softmaxCrossEntropy(cz, cl);
    expect((await values(c.loss))[1]).toBe(0);
    expect((await values(c.weight))).toEqual([1, 0, 1, 1]);
    const grad = await values(c.grad);
    expect([grad[1], grad[3], grad[5]]).toEqual([0, 0, 0]);
    expect(() => softmaxCrossEntropy(cz, tensor([1, 3, 0, 0], [2, 2], { dtype: 'i32', device: 'cpu' }))).toThrow(/softmaxCrossEntropy: label 3 at position 1 is out of range for 3 classes/);
    expect(() => softmaxCrossEntropy(cz, tensor([1, 2], [2], { dtype: 'i32', device: 'cpu' }))).toThrow(/softmaxCrossEntropy: labels must be i32 \[2, 2\] for logits \[2, 3, 2\] \(class axis 1\)/);
    if (!hasWebGPU()) return;
    const g = softmaxCrossEntropy(gz, tensor([1, 3, 2, 0], [2, 2], { dtype: 'i32' }));
    expect((await values(g.weight))).toEqual([1, 0, 1, 1]);
    expect(await compare(softmaxCrossEntropy(gz, gl).loss, c.loss)).toBeLessThan(1e-6);
  });
});
