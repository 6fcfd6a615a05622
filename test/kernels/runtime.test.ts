// The runtime binds buffers by their WGSL names and caches pipelines by their generated code: a
// launcher cannot pass buffers in the wrong order, forget one, or reuse a kernel compiled with
// another constant.
import { describe, expect, it } from 'vitest';
import { runtime, grid1, tensor, Tensor, hasWebGPU } from '../../kernels/index.js';
import { kernelBindings, kernelHeader, linearKernel, workgroupKernel } from '../../kernels/wgsl.js';

const vec = (values: number[], dtype: 'f32' | 'i32' = 'f32'): Tensor => tensor(values, [values.length], { dtype, device: 'webgpu' });

/** y = (x - mean) / variance with the storage arrays declared in the given order. */
const normalise = (order: ('mean' | 'variance')[], name = 'test.normalise'): ReturnType<ReturnType<typeof runtime>['kernel']> =>
  runtime().kernel(name, linearKernel(
    { uniforms: { n: 'u32' }, read: Object.fromEntries([['x', 'f32'], ...order.map((n) => [n, 'f32'])]), write: { y: 'f32' }, wg: 64, bound: 'n' },
    '  y[i] = (x[i] - mean[i]) / variance[i];',
  ));

describe('kernel header generator', () => {
  it('numbers the uniform first, then the read-only, then the read-write arrays', () => {
    const code = kernelHeader({ preamble: 'const K = 3u;', uniforms: { n: 'u32', a: 'f32' }, read: { x: 'f32', idx: 'i32' }, write: { y: 'vec4<f32>' }, wg: [8, 4, 1] });
    const lines = code.split('\n');
    expect(lines[0]).toBe('const K = 3u;');
    expect(lines[1]).toBe('struct P { n: u32, a: f32 }');
    expect(lines[2]).toBe('@group(0) @binding(0) var<uniform> p: P;');
    expect(lines[3]).toBe('@group(0) @binding(1) var<storage, read> x: array<f32>;');
    expect(lines[4]).toBe('@group(0) @binding(2) var<storage, read> idx: array<i32>;');
    expect(lines[5]).toBe('@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;');
    expect(lines[6]).toBe('@compute @workgroup_size(8, 4, 1)');
    expect(lines[7]).toMatch(/^fn main\(/);
    // without uniforms the storage arrays start at binding 0
    expect(kernelBindings({ write: { y: 'u32' } })).toBe('@group(0) @binding(0) var<storage, read_write> y: array<u32>;');
    expect(linearKernel({ uniforms: { n: 'u32' }, write: { y: 'f32' }, wg: 64, bound: 'n' }, '  y[i] = 1.0;'))
      .toContain('let i = (wid.x + wid.y * nwg.x) * 64u + li;\n  if (i >= p.n) { return; }\n  y[i] = 1.0;\n}');
    expect(workgroupKernel({ uniforms: { rows: 'u32' }, write: { y: 'f32' }, wg: 32, bound: 'rows' }, '  y[w] = 0.0;'))
      .toContain('let w = wid.x + wid.y * nwg.x;\n  if (w >= p.rows) { return; }');
  });
});

describe('buffers bound by name', () => {
  it('the declaration order does not matter: mean and variance reach the arrays of their names', async () => {
    if (!hasWebGPU()) return;
    const x = vec([10, 20, 30]), mean = vec([1, 2, 3]), variance = vec([3, 6, 9]), want = [3, 3, 3];
    for (const order of [['mean', 'variance'], ['variance', 'mean']] as const) {
      const k = normalise([...order]);
      expect(k.storage.map((s) => s.name)).toEqual(['x', ...order, 'y']);
      const y = Tensor.empty([3], 'f32', 'webgpu');
      // the same call for both kernels: only the names say which buffer is which
      runtime().dispatch(k, { variance: variance.binding(), y: y.binding(), mean: mean.binding(), x: x.binding() }, { n: 3 }, grid1(1));
      expect(Array.from(await y.data())).toEqual(want);
      y.dispose();
    }
    for (const t of [x, mean, variance]) t.dispose();
  });

  it('a missing, unknown or mistyped buffer is a clear error naming the kernel and its bindings', () => {
    if (!hasWebGPU()) return;
    const k = normalise(['mean', 'variance']);
    const x = vec([1, 2]), m = vec([0, 0]), v = vec([1, 1]), y = Tensor.empty([2], 'f32', 'webgpu'), ints = vec([1, 1], 'i32');
    const b = { x: x.binding(), mean: m.binding(), variance: v.binding(), y: y.binding() };
    const { variance: _v, ...noVariance } = b;
    expect(() => runtime().dispatch(k, noVariance, { n: 2 }, grid1(1)))
      .toThrow("kernel test.normalise: buffer 'variance' was not given (it takes x, mean, variance, y)");
    // a misspelt name: the buffer it was meant for is missing
    expect(() => runtime().dispatch(k, { ...noVariance, varaince: v.binding() }, { n: 2 }, grid1(1)))
      .toThrow("kernel test.normalise: buffer 'variance' was not given (it takes x, mean, variance, y)");
    expect(() => runtime().dispatch(k, { ...b, scale: v.binding() }, { n: 2 }, grid1(1)))
      .toThrow("kernel test.normalise: no buffer named 'scale' (it takes x, mean, variance, y)");
    expect(() => runtime().dispatch(k, { ...b, mean: ints.binding() }, { n: 2 }, grid1(1)))
      .toThrow("kernel test.normalise: buffer 'mean' holds f32, got a i32 tensor");
    expect(() => runtime().dispatch(k, b, {}, grid1(1))).toThrow("kernel test.normalise: uniform 'n' was not given");
    for (const t of [x, m, v, y, ints]) t.dispose();
  });
});

describe('pipelines cached by their code', () => {
  it('one name with two baked constants compiles two kernels; the same code is compiled once', async () => {
    if (!hasWebGPU()) return;
    const scaleBy = (c: number) => runtime().kernel('test.scale', linearKernel(
      { uniforms: { n: 'u32' }, read: { x: 'f32' }, write: { y: 'f32' }, wg: 64, bound: 'n' },
      `  y[i] = x[i] * ${c.toFixed(1)};`,
    ));
    const two = scaleBy(2), three = scaleBy(3);
    expect(two).not.toBe(three);
    expect(two.key).not.toBe(three.key);
    expect(scaleBy(2)).toBe(two);
    // the same code under another name is another kernel (its own row in a profile)
    const other = runtime().kernel('test.scale.other', linearKernel(
      { uniforms: { n: 'u32' }, read: { x: 'f32' }, write: { y: 'f32' }, wg: 64, bound: 'n' },
      '  y[i] = x[i] * 2.0;',
    ));
    expect(other).not.toBe(two);
    expect(other.name).toBe('test.scale.other');
    const x = vec([1, -2, 5]);
    const run = async (k: typeof two): Promise<number[]> => {
      const y = Tensor.empty([3], 'f32', 'webgpu');
      runtime().dispatch(k, { x: x.binding(), y: y.binding() }, { n: 3 }, grid1(1));
      const out = Array.from(await y.data());
      y.dispose();
      return out;
    };
    expect(await run(two)).toEqual([2, -4, 10]);
    expect(await run(three)).toEqual([3, -6, 15]);
    expect(await run(scaleBy(2))).toEqual([2, -4, 10]);
    x.dispose();
  });

  it('WGSL that does not parse names the kernel', () => {
    if (!hasWebGPU()) return;
    expect(() => runtime().kernel('test.broken', 'fn main( {')).toThrow(/^kernel test\.broken \{[0-9a-f]{8}\}: WGSL does not parse/);
  });
});
