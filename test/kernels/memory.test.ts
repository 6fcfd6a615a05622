import { describe, expect, it } from 'vitest';
import { rand, binary, unary, sum, transpose, gather, scatterAdd, tensor, zeros, scope, scopeAsync, keep, liveTensorCount, runtime, hasWebGPU, type Tensor } from '../../kernels/index.js';

const poolStats = () => (hasWebGPU() ? runtime().pool.getStats() : null);

describe('memory', () => {
  it('stays flat over 1,000 scoped iterations of an op chain', async () => {
    const x = rand([16, 24], { seed: 1 });
    const w = rand([24], { seed: 2 });
    const idx = tensor([3, 0, 3, 15, 7], [5], { dtype: 'i32' });
    await x.data(); // start from a submitted queue so every 100-iteration block sees the same batching
    const tensorsBefore = liveTensorCount();
    const before = poolStats();
    let plateau = -1;
    let last = NaN;
    for (let it = 0; it < 1000; it++) {
      const loss = scope(() => {
        const r = rand([16, 24]);
        const h = unary('exp', binary('add', binary('mul', r, w), x));
        const rows = scatterAdd(zeros([16, 24]), idx, gather(h, idx, 0), 0); // temporaries inside
        return sum(transpose(binary('add', h, rows)), -1);
      });
      expect(loss.shape).toEqual([24]);
      if (it % 100 === 99) {
        last = (await loss.data())[0];
        // the pool may grow during the first block only; later blocks reuse its buffers
        if (it === 99) plateau = poolStats()?.totalBytes ?? -1;
        else expect(poolStats()?.totalBytes ?? -1).toBe(plateau);
      }
      loss.dispose();
    }
    expect(Number.isFinite(last)).toBe(true);
    expect(liveTensorCount()).toBe(tensorsBefore);
    if (before) expect(poolStats()!.liveBytes).toBe(before.liveBytes);
    for (const t of [x, w, idx]) t.dispose();
  });

  it('scope disposes what it created except its result (also in arrays and objects)', () => {
    const outside = rand([4]);
    const start = liveTensorCount();
    let inner: Tensor[] = [];
    const result = scope(() => {
      const a = rand([4]);
      const b = unary('exp', a);
      inner = [a, b];
      return { pair: [b, binary('add', b, outside)], label: 'kept' };
    });
    expect(inner[0].isDisposed).toBe(true);
    expect(inner[1].isDisposed).toBe(false); // returned inside an array inside an object
    expect(result.pair[1].isDisposed).toBe(false);
    expect(outside.isDisposed).toBe(false); // created before the scope: not its business
    expect(liveTensorCount()).toBe(start + 2);
    for (const t of result.pair) t.dispose();
    outside.dispose();
  });

  it('nested scopes hand a returned tensor to the enclosing scope', () => {
    const start = liveTensorCount();
    let fromInner: Tensor | null = null;
    let innerTemp: Tensor | null = null;
    const outer = scope(() => {
      fromInner = scope(() => {
        innerTemp = rand([3]);
        return unary('neg', innerTemp);
      });
      expect(innerTemp!.isDisposed).toBe(true);
      expect(fromInner.isDisposed).toBe(false);
      return unary('exp', fromInner);
    });
    expect(fromInner!.isDisposed).toBe(true); // owned by the outer scope, which did not return it
    expect(outer.isDisposed).toBe(false);
    expect(liveTensorCount()).toBe(start + 1);
    outer.dispose();
  });

  it('keep() exempts a tensor from every enclosing scope', () => {
    const start = liveTensorCount();
    let kept: Tensor | null = null;
    scope(() => {
      scope(() => {
        kept = keep(rand([2]));
        rand([2]);
      });
    });
    expect(kept!.isDisposed).toBe(false);
    expect(liveTensorCount()).toBe(start + 1);
    kept!.dispose();
  });

  it('a throwing scope disposes everything it created', () => {
    const start = liveTensorCount();
    expect(() => scope(() => {
      rand([5]);
      throw new Error('boom');
    })).toThrow('boom');
    expect(liveTensorCount()).toBe(start);
  });

  it('scopeAsync keeps the result across awaits', async () => {
    const start = liveTensorCount();
    const out = await scopeAsync(async () => {
      const a = rand([6]);
      await a.data();
      return unary('exp', a);
    });
    expect(out.isDisposed).toBe(false);
    expect(liveTensorCount()).toBe(start + 1);
    out.dispose();
  });
});
