// Tensor creation: from data, zeros/ones/full, arange, plus moving a tensor between backends.

import { backend, type Backend } from './device.js';
import { check, fmtShape } from './errors.js';
import { runtime, grid1 } from './runtime.js';
import { linearKernel, memoCode } from './wgsl.js';
import { Tensor, cpuArray, shapeSize, type DType, type Shape } from './tensor.js';

const WG = 256;

const fillCode = memoCode((t: DType) => linearKernel({ uniforms: { n: 'u32', v: t }, write: { y: t }, wg: WG, bound: 'n' }, '  y[i] = p.v;'));

export interface CreateOptions {
  dtype?: DType;
  device?: Backend;
}

type NestedNumbers = number | NestedNumbers[];
export type TensorData = ArrayLike<number> | NestedNumbers;

function flatten(data: TensorData): { values: ArrayLike<number>; shape: number[] } {
  if (typeof data === 'number') return { values: [data], shape: [] };
  if (ArrayBuffer.isView(data) || !Array.isArray(data) || data.length === 0 || !Array.isArray(data[0])) {
    return { values: data as ArrayLike<number>, shape: [(data as ArrayLike<number>).length] };
  }
  const shape: number[] = [];
  for (let d: unknown = data; Array.isArray(d); d = d[0]) shape.push(d.length);
  const values = (data as NestedNumbers[]).flat(Infinity as 1) as number[];
  check(values.length === shapeSize(shape), 'tensor', `ragged nested array: expected ${fmtShape(shape)}`);
  return { values, shape };
}

function defaultDType(values: ArrayLike<number>): DType {
  if (values instanceof Int32Array) return 'i32';
  if (values instanceof Uint32Array) return 'u32';
  return 'f32';
}

/** A tensor from numbers: a typed array or (nested) array, with an optional shape. */
export function tensor(data: TensorData, shape?: Shape, opts: CreateOptions = {}): Tensor {
  const flat = flatten(data);
  const s = shape ?? flat.shape;
  const dtype = opts.dtype ?? defaultDType(flat.values);
  check(shapeSize(s) === flat.values.length, 'tensor', `${flat.values.length} values do not fill shape ${fmtShape(s)}`);
  const dev = opts.device ?? backend();
  const out = Tensor.empty(s, dtype, dev, 'tensor');
  if (dev === 'cpu') {
    out.cpu.set(flat.values);
    return out;
  }
  const arr = dtype === 'f32' ? Float32Array : dtype === 'i32' ? Int32Array : Uint32Array;
  const host = flat.values instanceof arr ? flat.values : arr.from(flat.values);
  runtime().upload(out.buffer, host);
  return out;
}

export function full(shape: Shape, value: number, opts: CreateOptions = {}): Tensor {
  const dtype = opts.dtype ?? 'f32';
  const dev = opts.device ?? backend();
  const out = Tensor.empty(shape, dtype, dev, 'full');
  if (dev === 'cpu') {
    out.cpu.fill(value);
    return out;
  }
  if (value === 0 && !Object.is(value, -0)) {
    runtime().clear(out.buffer, out.size * 4);
    return out;
  }
  const k = runtime().kernel('creation.fill', fillCode(dtype));
  runtime().dispatch(k, { y: out.binding() }, { n: out.size, v: value }, grid1(Math.ceil(out.size / WG)));
  return out;
}

export const zeros = (shape: Shape, opts?: CreateOptions): Tensor => full(shape, 0, opts);
export const ones = (shape: Shape, opts?: CreateOptions): Tensor => full(shape, 1, opts);
export const zerosLike = (t: Tensor): Tensor => full(t.shape, 0, { dtype: t.dtype, device: t.device });
export const onesLike = (t: Tensor): Tensor => full(t.shape, 1, { dtype: t.dtype, device: t.device });

/** [start, start+step, ...) below stop; i32 when every argument is an integer, unless dtype says. */
export function arange(start: number, stop?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  check(step !== 0, 'arange', 'step must not be 0');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dtype = opts.dtype ?? ([start, stop, step].every(Number.isInteger) ? 'i32' : 'f32');
  const values = cpuArray(dtype, n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  return tensor(values, [n], { dtype, device: opts.device });
}

/** Copies a tensor to another backend (reads back from the GPU when leaving it). */
export async function toDevice(t: Tensor, dev: Backend): Promise<Tensor> {
  return tensor(await t.data(), t.shape, { dtype: t.dtype, device: dev });
}

/** A copy with its own storage. */
export function clone(t: Tensor): Tensor {
  const out = Tensor.empty(t.shape, t.dtype, t.device, 'clone');
  if (t.device === 'cpu') out.cpu.set(t.cpu);
  else runtime().copy(t.buffer, 0, out.buffer, 0, t.size * 4);
  return out;
}
