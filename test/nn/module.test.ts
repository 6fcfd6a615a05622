import { describe, expect, it } from 'vitest';
import { full, hasWebGPU, manualSeed, tensor, zeros, type Tensor } from '../../index.node.js';
import { add, mul, relu, sum } from '../../autograd/ops.js';
import { Module, ModuleList, Sequential, StateDictError, isParameter, parameter } from '../../nn/module.js';
import { copyInto, kaimingNormal, kaimingUniform, calculateGain, fans, skipInit, uniform } from '../../nn/init.js';

const gpu = () => (hasWebGPU() ? 'webgpu' : 'cpu') as 'webgpu' | 'cpu';
const values = async (t: Tensor) => Array.from(await t.data());

/** y = x · scale + shift, per feature. */
class Affine extends Module {
  scale: Tensor;
  shift: Tensor;
  notAParameter: Tensor;
  constructor(n: number, device = gpu()) {
    super();
    this.scale = parameter(full([n], 1, { device }));
    this.shift = parameter(zeros([n], { device }));
    this.notAParameter = zeros([n], { device });
    this.registerBuffer('calls', zeros([1], { device }));
    this.registerBuffer('scratch', zeros([n], { device }), { persistent: false });
  }
  forward(x: Tensor): Tensor {
    return add(mul(x, this.scale), this.shift);
  }
}

class ReluLayer extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

class Net extends Module {
  first: Affine;
  body: Sequential;
  heads: ModuleList<Affine>;
  missing: Module | null = null;
  constructor(device = gpu()) {
    super();
    this.first = new Affine(3, device);
    this.body = new Sequential(new Affine(3, device), new ReluLayer(), new Affine(3, device));
    this.heads = new ModuleList([new Affine(3, device)]);
    this.heads.push(new Affine(3, device));
  }
}

const names = (m: Module) => m.namedParameters().map(([n]) => n);

describe('Module', () => {
  it('registers fields in assignment order with PyTorch dotted names', () => {
    const net = new Net();
    expect(names(net)).toEqual([
      'first.scale', 'first.shift',
      'body.0.scale', 'body.0.shift', 'body.2.scale', 'body.2.shift',
      'heads.0.scale', 'heads.0.shift', 'heads.1.scale', 'heads.1.shift',
    ]);
    expect(net.namedBuffers().map(([n]) => n)).toEqual(['first.calls', 'first.scratch', 'body.0.calls', 'body.0.scratch', 'body.2.calls', 'body.2.scratch', 'heads.0.calls', 'heads.0.scratch', 'heads.1.calls', 'heads.1.scratch']);
    expect(net.children().length).toBe(3);
    expect([...net.namedModules()].map(([n]) => n)).toEqual(['', 'first', 'body', 'body.0', 'body.1', 'body.2', 'heads', 'heads.0', 'heads.1']);
    expect(net.numParameters()).toBe(10 * 3);
    expect(isParameter(net.first.notAParameter)).toBe(false);
    expect(net.body.length).toBe(3);
    expect(net.heads.at(1)).toBe([...net.heads][1]);
  });

  it('stateDict holds parameters then persistent buffers per module, children after', () => {
    const sd = new Net().stateDict();
    expect([...sd.keys()].slice(0, 5)).toEqual(['first.scale', 'first.shift', 'first.calls', 'body.0.scale', 'body.0.shift']);
    expect([...sd.keys()].some((k) => k.endsWith('scratch'))).toBe(false);
    expect(sd.size).toBe(5 * 3);
  });

  it('explicit registration, null slots, reassignment and shared parameters', () => {
    const m = new Affine(2);
    m.registerParameter('extra', null);
    m.registerModule('child', null);
    expect(names(m)).toEqual(['scale', 'shift']);
    m.registerParameter('extra', zeros([4], { device: gpu() }));
    expect(names(m)).toEqual(['scale', 'shift', 'extra']);
    // a plain tensor cannot replace a parameter; null can
    expect(() => ((m as unknown as { scale: Tensor }).scale = zeros([2]))).toThrow(/parameter 'scale'/);
    (m as unknown as { extra: Tensor | null }).extra = null;
    expect(names(m)).toEqual(['scale', 'shift']);
    // reassigning a registered buffer keeps its slot
    const calls = full([1], 5, { device: gpu() });
    (m as unknown as { calls: Tensor }).calls = calls;
    expect(m.stateDict().get('calls')).toBe(calls);
    // a parameter reachable twice is listed once (as torch's named_parameters)
    const outer = new Net();
    outer.heads.at(1).scale = outer.first.scale;
    expect(names(outer).filter((n) => n.endsWith('scale')).length).toBe(4);
    expect(outer.stateDict().get('heads.1.scale')).toBe(outer.first.scale);
    expect(() => m.registerBuffer('scale', zeros([2]))).toThrow(/already registered/);
    expect(() => m.registerBuffer('a.b', zeros([2]))).toThrow(/must not contain/);
  });

  it('train() and eval() switch every descendant', () => {
    const net = new Net();
    expect([...net.namedModules()].every(([, m]) => m.training)).toBe(true);
    expect(net.eval()).toBe(net);
    expect([...net.namedModules()].every(([, m]) => !m.training)).toBe(true);
    net.body.train();
    expect(net.training).toBe(false);
    expect(net.body.at(1).training).toBe(true);
  });

  it('Sequential applies its layers in order; zeroGrad drops the gradients', async () => {
    const a = new Affine(3), b = new Affine(3);
    copyInto(a.scale, tensor([2, -1, 0.5], [3], { device: 'cpu' }));
    copyInto(a.shift, tensor([1, 1, -4], [3], { device: 'cpu' }));
    copyInto(b.scale, tensor([3, 3, 3], [3], { device: 'cpu' }));
    const seq = new Sequential(a, new ReluLayer(), b);
    const y = seq.forward(tensor([[1, 2, 4], [-1, -3, 10]], undefined, { device: gpu() }));
    // relu([2+1, -2+1, 2-4]) * 3 = [9, 0, 0]; relu([-2+1, 3+1, 5-4]) * 3 = [0, 12, 3]
    expect(await y.toArray()).toEqual([[9, 0, 0], [0, 12, 3]]);
    sum(y).backward();
    expect(await values(b.scale.grad!)).toEqual([3, 4, 1]);
    seq.zeroGrad();
    expect(seq.parameters().every((p) => p.grad === null)).toBe(true);
  });
  it('Sequential is a ModuleList of layers: push/at/length/iteration, names "0", "1", ... unchanged', async () => {
    const seq = new Sequential(new Affine(2), new ReluLayer());
    expect(seq).toBeInstanceOf(ModuleList);
    seq.push(new Affine(2));
    expect(seq.length).toBe(3);
    expect(seq.at(-1)).toBe([...seq][2]);
    expect(() => seq.at(3)).toThrow(/Sequential: index 3 is out of range for 3 modules/);
    expect([...seq.stateDict().keys()]).toEqual(['0.scale', '0.shift', '0.calls', '2.scale', '2.shift', '2.calls']);
    // the same names as a ModuleList holding the same modules, and as torch.nn.Sequential
    const list = new ModuleList<Module>([new Affine(2), new ReluLayer(), new Affine(2)]);
    expect([...list.stateDict().keys()]).toEqual([...seq.stateDict().keys()]);
    expect(await new Sequential().forward(tensor([1, -2], [2], { device: 'cpu' })).toArray()).toEqual([1, -2]);
  });
});

describe('loadStateDict', () => {
  const build = (seed: number, device = gpu()) => {
    manualSeed(seed);
    const net = new Net(device);
    for (const p of net.parameters()) uniform(p, -1, 1);
    return net;
  };
  const snapshot = async (m: Module) => Promise.all([...m.stateDict().values()].map(values));

  it('round-trips every parameter and buffer, across backends', async () => {
    const a = build(1), b = build(2);
    expect(await snapshot(a)).not.toEqual(await snapshot(b));
    expect(b.loadStateDict(a.stateDict())).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(await snapshot(b)).toEqual(await snapshot(a));
    // from a CPU state dict (how checkpoints arrive) into a GPU model, and loading a model's own state
    const c = build(3, 'cpu');
    b.loadStateDict(Object.fromEntries(c.stateDict()));
    expect(await snapshot(b)).toEqual((await snapshot(c)).map((v) => Array.from(Float32Array.from(v))));
    b.loadStateDict(b.stateDict());
    expect(await snapshot(b)).toEqual((await snapshot(c)).map((v) => Array.from(Float32Array.from(v))));
  });

  it('names missing and unexpected keys and shape mismatches, and leaves the model unchanged', async () => {
    const a = build(4), b = build(5);
    const before = await snapshot(b);
    const sd = a.stateDict();
    sd.delete('body.2.shift');
    sd.set('body.9.scale', zeros([3]));
    sd.set('first.scale', zeros([4]));
    let error: unknown;
    try {
      b.loadStateDict(sd);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StateDictError);
    const err = error as StateDictError;
    expect(err.missingKeys).toEqual(['body.2.shift']);
    expect(err.unexpectedKeys).toEqual(['body.9.scale']);
    expect(err.message).toMatch(/Missing key\(s\) in state_dict: "body.2.shift"/);
    expect(err.message).toMatch(/Unexpected key\(s\) in state_dict: "body.9.scale"/);
    expect(err.message).toMatch(/size mismatch for first.scale: copying a param with shape \[4\] from checkpoint, the shape in current model is \[3\]/);
    expect(await snapshot(b)).toEqual(before);

    // strict: false tolerates missing and unexpected keys but never a shape mismatch
    expect(() => b.loadStateDict(sd, { strict: false })).toThrow(/size mismatch for first.scale/);
    expect(await snapshot(b)).toEqual(before);
    sd.delete('first.scale');
    expect(b.loadStateDict(sd, { strict: false })).toEqual({ missingKeys: ['first.scale', 'body.2.shift'], unexpectedKeys: ['body.9.scale'] });
    expect(await values(b.body.at(0).stateDict().get('scale')!)).toEqual(await values(a.body.at(0).stateDict().get('scale')!));
    expect(await values(b.first.scale)).toEqual(before[0]);
  });

  it('refuses a GPU state dict for a CPU model without touching it', async () => {
    if (!hasWebGPU()) return;
    const cpuNet = build(6, 'cpu');
    const before = await snapshot(cpuNet);
    expect(() => cpuNet.loadStateDict(build(7).stateDict())).toThrow(/first.scale lives on WebGPU but the model on the CPU/);
    expect(await snapshot(cpuNet)).toEqual(before);
  });
});

describe('init', () => {
  const stats = async (t: Tensor) => {
    const v = await values(t);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    return { mean, std, maxAbs: Math.max(...v.map(Math.abs)) };
  };

  it('computes fans and gains as torch.nn.init', () => {
    expect(fans([64, 16, 3, 3])).toEqual({ fanIn: 144, fanOut: 576 });
    expect(fans([10, 20])).toEqual({ fanIn: 20, fanOut: 10 });
    expect(() => fans([5])).toThrow(/rank >= 2/);
    expect(calculateGain('relu')).toBeCloseTo(Math.SQRT2, 12);
    expect(calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / 1.0001), 12);
    expect(calculateGain('leaky_relu', 0)).toBeCloseTo(Math.SQRT2, 12);
    expect(calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(calculateGain('tanh')).toBeCloseTo(5 / 3, 12);
  });

  it('kaiming uniform (a=√5) is U(−1/√fan_in, 1/√fan_in); kaiming normal (fan_out, relu) has std √(2/fan_out)', async () => {
    const w = parameter(zeros([256, 100], { device: gpu() }));
    kaimingUniform(w, { a: Math.sqrt(5) });
    const u = await stats(w);
    expect(u.maxAbs).toBeLessThanOrEqual(0.1 + 1e-7);
    expect(u.maxAbs).toBeGreaterThan(0.099);
    expect(u.std / (0.1 / Math.sqrt(3))).toBeCloseTo(1, 1);
    const c = parameter(zeros([64, 32, 3, 3], { device: gpu() }));
    kaimingNormal(c, { mode: 'fan_out', nonlinearity: 'relu' });
    const n = await stats(c);
    expect(Math.abs(n.mean)).toBeLessThan(0.002);
    expect(n.std / Math.sqrt(2 / (64 * 9))).toBeCloseTo(1, 1);
  });

  it('is reproducible under manualSeed and does nothing under skipInit', async () => {
    const draw = (seed: number) => {
      manualSeed(seed);
      return kaimingNormal(parameter(zeros([8, 4], { device: gpu() })));
    };
    expect(await values(draw(11))).toEqual(await values(draw(11)));
    expect(await values(draw(11))).not.toEqual(await values(draw(12)));
    const untouched = skipInit(() => kaimingNormal(parameter(zeros([8, 4], { device: gpu() }))));
    expect((await values(untouched)).every((v) => v === 0)).toBe(true);
  });
});
