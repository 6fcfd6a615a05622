import { describe, expect, it } from 'vitest';
import { rand, unary, binary, matmul, runtime, device } from '../../kernels/index.js';

describe('kernel profiler', () => {
  it('counts every dispatch per kernel, past a batch boundary, and leaves results unchanged', async () => {
    const a = rand([33, 17], { seed: 1 });
    const b = rand([17, 9], { seed: 2 });
    const plain = await unary('exp', matmul(a, b)).data();
    if (!device().gpu.features.has('timestamp-query')) {
      expect(() => runtime().startProfile()).toThrow("needs the adapter feature 'timestamp-query'");
      return;
    }
    const profile = runtime().startProfile();
    expect(() => runtime().startProfile()).toThrow('already running');
    let y = unary('exp', matmul(a, b));
    // 300 dispatches: more than one submitted batch (256), so more than one query set
    for (let i = 0; i < 300; i++) y = binary('add', y, y);
    const times = await profile.stop();
    const calls = Object.fromEntries(times.map((t) => [t.name, t.calls]));
    // kernels are named <file>.<op>[.<pass>]: a profile row points at its file under kernels/
    // the matmul kernel depends on the adapter: the subgroup GEMM on CPU adapters with fixed subgroups, the tiled one elsewhere
    const gemm = Object.keys(calls).filter((name) => name.startsWith('matmul.'));
    expect(gemm.length === 1 && ['matmul.gemm', 'matmul.subgroup'].includes(gemm[0])).toBe(true);
    expect(calls).toEqual({ [gemm[0]]: 1, 'elementwise.unary.exp': 1, 'elementwise.add': 300 });
    for (const t of times) expect(t.ms).toBeGreaterThanOrEqual(0);
    expect(times.map((t) => t.ms)).toEqual([...times.map((t) => t.ms)].sort((p, q) => q - p));
    expect(Array.from(await unary('exp', matmul(a, b)).data())).toEqual(Array.from(plain));
    const detailed = runtime().startProfile({ bySpecialisation: true });
    unary('exp', a);
    const [only] = await detailed.stop();
    expect(only.name).toMatch(/^elementwise\.unary\.exp \{[0-9a-f]{8}\}$/);
  });
});
