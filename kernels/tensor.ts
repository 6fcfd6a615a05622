// Tensor: a shape, a dtype and a storage on one backend (a pooled GPUBuffer, or a typed array for
// the CPU reference backend, which keeps floats in float64 so it can serve as the oracle).

import { backend, type Backend } from './device.js';
import { check, fmtShape } from './errors.js';
import { runtime, type Bound } from './runtime.js';

export type DType = 'f32' | 'i32' | 'u32';
export type CPUArray = Float64Array | Int32Array | Uint32Array;
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint32Array;
export type Shape = readonly number[];

export const shapeSize = (s: Shape): number => s.reduce((a, b) => a * b, 1);

export function stridesOf(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

export function cpuArray(dtype: DType, n: number): CPUArray {
  return dtype === 'f32' ? new Float64Array(n) : dtype === 'i32' ? new Int32Array(n) : new Uint32Array(n);
}

class Storage {
  refs = 1;
  constructor(
    readonly gpu: GPUBuffer | null,
    readonly cpu: CPUArray | null,
  ) {}
}

// ---- scopes: everything created inside scope(fn) is disposed on exit unless returned or kept.
const scopes: Set<Tensor>[] = [];

let liveTensors = 0;
export const liveTensorCount = (): number => liveTensors;

/** Fields used by autograd (see autograd/tape.ts); kept here so a Tensor is one object. */
export interface GradNode {
  inputs: Tensor[];
  backward: (grad: Tensor) => (Tensor | null)[];
  name: string;
  /** Frees what the op's forward saved for its backward; called by the tape and by dispose(). Idempotent. */
  release?: () => void;
}

export class Tensor {
  readonly size: number;
  private storage: Storage | null;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;

  /** Use the creation functions (tensor, zeros, ...) or an op; this wraps an existing storage. */
  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    storage: Storage,
  ) {
    this.size = shapeSize(shape);
    this.storage = storage;
    liveTensors++;
    scopes[scopes.length - 1]?.add(this);
  }

  static fromGPU(shape: Shape, dtype: DType, buffer: GPUBuffer): Tensor {
    return new Tensor(shape, dtype, new Storage(buffer, null));
  }

  static fromCPU(shape: Shape, dtype: DType, data: CPUArray): Tensor {
    return new Tensor(shape, dtype, new Storage(null, data));
  }

  /** Allocates an uninitialised tensor on `dev` (GPU memory comes from the pool). */
  static empty(shape: Shape, dtype: DType = 'f32', dev: Backend = backend(), op = 'empty'): Tensor {
    for (const d of shape) check(Number.isInteger(d) && d >= 0, op, `invalid shape ${fmtShape(shape)}`);
    const n = shapeSize(shape);
    if (dev === 'cpu') return Tensor.fromCPU(shape, dtype, cpuArray(dtype, n));
    const buf = runtime().pool.acquire(n * 4, () => `${op}: output of shape ${fmtShape(shape)} (${dtype})`);
    return Tensor.fromGPU(shape, dtype, buf);
  }

  get rank(): number {
    return this.shape.length;
  }

  get device(): Backend {
    return this.live().gpu ? 'webgpu' : 'cpu';
  }

  get isDisposed(): boolean {
    return this.storage === null;
  }

  private live(): Storage {
    if (!this.storage) throw new Error(`tensor of shape ${fmtShape(this.shape)} was used after dispose()`);
    return this.storage;
  }

  /** The GPU buffer (throws on the CPU backend). */
  get buffer(): GPUBuffer {
    const b = this.live().gpu;
    if (!b) throw new Error(`tensor ${fmtShape(this.shape)} lives on the CPU backend, not on the GPU`);
    return b;
  }

  /** The CPU storage array (throws on the GPU backend). Floats are float64 here. */
  get cpu(): CPUArray {
    const c = this.live().cpu;
    if (!c) throw new Error(`tensor ${fmtShape(this.shape)} lives on the GPU; use await data()`);
    return c;
  }

  binding(): Bound {
    return { buffer: this.buffer, bytes: this.size * 4, dtype: this.dtype };
  }

  /** Reads the values back: Float32Array for f32 on the GPU, Float64Array on the CPU backend. */
  async data(): Promise<TypedArray> {
    const s = this.live();
    if (s.cpu) return s.cpu.slice();
    const raw = await runtime().read(s.gpu!, this.size * 4);
    return this.dtype === 'f32' ? new Float32Array(raw) : this.dtype === 'i32' ? new Int32Array(raw) : new Uint32Array(raw);
  }

  /** Nested arrays in the tensor's shape (a number for a scalar). */
  async toArray(): Promise<unknown> {
    const d = Array.from(await this.data());
    const nest = (off: number, dim: number): unknown => {
      if (dim === this.shape.length) return d[off];
      const step = shapeSize(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => nest(off + i * step, dim + 1));
    };
    return nest(0, 0);
  }

  async item(): Promise<number> {
    check(this.size === 1, 'item', `needs a tensor of one element, got shape ${fmtShape(this.shape)}`);
    return (await this.data())[0];
  }

  /** A view with another shape over the same storage (-1 infers one dimension). */
  reshape(shape: readonly number[]): Tensor {
    const s = inferShape('reshape', shape, this.size, this.shape);
    const st = this.live();
    st.refs++;
    return new Tensor(s, this.dtype, st);
  }

  /** Releases the storage (returned to the pool once its last view is gone). Idempotent. */
  dispose(): void {
    const s = this.storage;
    if (!s) return;
    this.storage = null;
    liveTensors--;
    if (--s.refs === 0 && s.gpu) runtime().pool.release(s.gpu);
    this.grad?.dispose();
    this.grad = null;
    // the state saved for this node's backward goes with the output (a graph that is never
    // backpropagated must not leak it); the node stays: a backward through a disposed intermediate
    // that needs its values must fail loudly ("used after dispose"), not silently stop propagating
    this.node?.release?.();
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}, ${this.storage ? this.device : 'disposed'})`;
  }
}

export function inferShape(op: string, shape: readonly number[], size: number, from: Shape): number[] {
  const s = [...shape];
  const neg = s.filter((d) => d === -1).length;
  check(neg <= 1, op, `at most one -1 in ${fmtShape(shape)}`);
  for (const d of s) check(d === -1 || (Number.isInteger(d) && d >= 0), op, `invalid dimension in ${fmtShape(shape)}`);
  if (neg) {
    const known = s.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    check(known > 0 && size % known === 0, op, `cannot infer -1 in ${fmtShape(shape)} from ${size} elements`);
    s[s.indexOf(-1)] = size / known;
  }
  check(shapeSize(s) === size, op, `cannot view shape ${fmtShape(from)} (${size} elements) as ${fmtShape(s)}`);
  return s;
}

/**
 * Runs `fn` and disposes every tensor created inside it except those in its result (tensors found
 * in returned arrays/objects) and those passed to keep(). Async functions are awaited.
 */
export function scope<T>(fn: () => T): T {
  const set = new Set<Tensor>();
  scopes.push(set);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of set) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) throw new Error('scope(fn): fn returned a Promise; use scopeAsync');
  release(set, result);
  return result;
}

export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  const set = new Set<Tensor>();
  scopes.push(set);
  try {
    const result = await fn();
    release(set, result);
    return result;
  } catch (e) {
    for (const t of set) t.dispose();
    throw e;
  } finally {
    const i = scopes.lastIndexOf(set);
    if (i >= 0) scopes.splice(i, 1);
  }
}

function release(set: Set<Tensor>, result: unknown): void {
  const keepSet = new Set<Tensor>();
  const visit = (v: unknown, depth: number): void => {
    if (v instanceof Tensor) keepSet.add(v);
    else if (depth < 4 && v && typeof v === 'object') for (const x of Array.isArray(v) ? v : Object.values(v)) visit(x, depth + 1);
  };
  visit(result, 0);
  for (const t of set) {
    if (keepSet.has(t)) scopes[scopes.length - 1]?.add(t);
    else t.dispose();
  }
}

/** Exempts `t` from disposal by the enclosing scopes. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}
