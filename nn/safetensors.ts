// The safetensors format (Hugging Face), written from its specification:
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   a UTF-8 JSON object {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
//             padded with spaces so the data starts 8-byte aligned
//   the rest  the tensors, row-major little-endian, back to back; offsets are relative to the data start
// Bytes in, bytes out: no Node built-ins here (browser-safe). Checkpoints (a model state dict, an
// optimizer state and run metadata in one file) are laid out on top; nn/node-checkpoint.ts writes them.

import { backend, type Backend } from '../kernels/device.js';
import { tensor } from '../kernels/creation.js';
import { check, fmtShape } from '../kernels/errors.js';
import { shapeSize, Tensor, type DType, type Shape } from '../kernels/tensor.js';
import type { OptimizerScalars, OptimizerStateDict } from './optim.js';

const OP = 'safetensors';
const BYTES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U32: 4 } as const;
/** The dtypes this reader understands; F32, I32, U32 (and F64 on request) are also written. */
export type SafetensorsDType = keyof typeof BYTES;
/** The reference implementation refuses larger headers; so do we. */
const MAX_HEADER_BYTES = 100_000_000;
const F32_MAX = 3.4028234663852886e38;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error('safetensors: this reader assumes a little-endian host');

export type HostArray = Float32Array | Float64Array | Int32Array | Uint32Array | BigInt64Array;

/** A tensor of a file, as it is stored there. */
export interface RawTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** The tensor's bytes (a view into the file). */
  bytes: Uint8Array;
}

export interface EncodeOptions {
  /** How f32 tensors are stored: 'F32' (default, what PyTorch expects) or 'F64' (the CPU backend's float64 values, exactly). */
  floatDType?: 'F32' | 'F64';
}

type TensorSource = Map<string, Tensor> | Record<string, Tensor>;
const entriesOf = (s: TensorSource): [string, Tensor][] => (s instanceof Map ? [...s] : Object.entries(s));

/** Serialises host arrays (name → dtype, shape, values) and a string metadata map. */
export function encodeSafetensors(tensors: [string, { dtype: SafetensorsDType; shape: Shape; data: HostArray }][], metadata: Record<string, string> = {}): Uint8Array {
  // no prototype: a tensor named __proto__ stays a key
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, { dtype, shape, data }] of tensors) {
    check(name !== '__metadata__' && !(name in header), OP, `duplicate or reserved tensor name '${name}'`);
    check(data.length === shapeSize(shape) && data.BYTES_PER_ELEMENT === BYTES[dtype], OP, `'${name}': ${data.length} values of ${data.BYTES_PER_ELEMENT} bytes do not make a ${dtype} tensor of shape ${fmtShape(shape)}`);
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, { data }] of tensors) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

/** Tensors torch keeps as int64 (BatchNorm's batch counter): written as I64 so a state dict's dtypes match torch's. */
const TORCH_INT64 = /(^|\.)num_batches_tracked$/;

/** Reads a tensor's values back to the host in the dtype it is stored as. */
async function hostArray(name: string, t: Tensor, floatDType: 'F32' | 'F64'): Promise<{ dtype: SafetensorsDType; shape: Shape; data: HostArray }> {
  check(!t.isDisposed, OP, `tensor '${name}' was disposed`);
  const values = await t.data();
  if (t.dtype === 'i32' && TORCH_INT64.test(name)) return { dtype: 'I64', shape: t.shape, data: BigInt64Array.from(values as Int32Array, (v) => BigInt(v)) };
  if (t.dtype === 'i32') return { dtype: 'I32', shape: t.shape, data: values as Int32Array };
  if (t.dtype === 'u32') return { dtype: 'U32', shape: t.shape, data: values as Uint32Array };
  if (floatDType === 'F64') return { dtype: 'F64', shape: t.shape, data: Float64Array.from(values) };
  return { dtype: 'F32', shape: t.shape, data: values instanceof Float32Array ? values : Float32Array.from(values) };
}

/** Serialises tensors (read back from the GPU, the only readback) under their names, bit for bit. */
export async function saveSafetensors(tensors: TensorSource, metadata: Record<string, string> = {}, opts: EncodeOptions = {}): Promise<Uint8Array> {
  const arrays: [string, Awaited<ReturnType<typeof hostArray>>][] = [];
  // one readback at a time: the staging buffers are reused instead of piling up to the model's size
  for (const [name, t] of entriesOf(tensors)) arrays.push([name, await hostArray(name, t, opts.floatDType ?? 'F32')]);
  return encodeSafetensors(arrays, metadata);
}

/**
 * Parses and validates a safetensors file. Every error names what is wrong and where: a file cut
 * short, a header that is not JSON, a tensor whose byte range points past the end of the file or
 * does not match its dtype and shape, or ranges that overlap or leave holes.
 */
export function decodeSafetensors(file: Uint8Array): { tensors: Map<string, RawTensor>; metadata: Record<string, string> } {
  check(file.length >= 8, OP, `the file has ${file.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerBytes = Number(view.getBigUint64(0, true));
  check(headerBytes <= MAX_HEADER_BYTES, OP, `header length ${headerBytes} exceeds ${MAX_HEADER_BYTES} bytes: not a safetensors file`);
  check(8 + headerBytes <= file.length, OP, `the header (bytes 8 to ${8 + headerBytes}) runs past the end of the file (${file.length} bytes): the file is truncated`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, 8 + headerBytes)));
  } catch (e) {
    throw new Error(`${OP}: the header (bytes 8 to ${8 + headerBytes}) is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  check(header !== null && typeof header === 'object' && !Array.isArray(header), OP, 'the header is not a JSON object');
  const dataStart = 8 + headerBytes;
  const dataBytes = file.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, RawTensor>();
  const ranges: [number, number, string][] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      check(entry !== null && typeof entry === 'object' && !Array.isArray(entry), OP, '__metadata__ is not a JSON object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        check(typeof v === 'string', OP, `__metadata__ value '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    check(e !== null && typeof e === 'object', OP, `'${name}': the entry is not a JSON object`);
    check(typeof e.dtype === 'string' && e.dtype in BYTES, OP, `'${name}': dtype ${JSON.stringify(e.dtype)} is not supported (${Object.keys(BYTES).join(', ')})`);
    const dtype = e.dtype as SafetensorsDType;
    const shape = e.shape;
    check(Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0), OP, `'${name}': shape ${JSON.stringify(shape)} is not a list of sizes`);
    const offsets = e.data_offsets;
    check(Array.isArray(offsets) && offsets.length === 2 && offsets.every((o) => Number.isSafeInteger(o) && o >= 0) && offsets[0] <= offsets[1], OP,
      `'${name}': data_offsets ${JSON.stringify(offsets)} is not a range [begin, end]`);
    const [begin, end] = offsets as [number, number];
    check(dataStart + end <= file.length, OP, `'${name}': data_offsets end ${end} (file offset ${dataStart + end}) points past the end of the file (${file.length} bytes): the file is truncated or corrupt`);
    const need = shapeSize(shape as number[]) * BYTES[dtype];
    check(end - begin === need, OP, `'${name}': data_offsets [${begin}, ${end}] hold ${end - begin} bytes, a ${dtype} tensor of shape ${fmtShape(shape as number[])} needs ${need}`);
    entries.set(name, { dtype, shape: shape as number[], bytes: file.subarray(dataStart + begin, dataStart + end) });
    ranges.push([begin, end, name]);
  }
  // the tensors must tile the data section exactly, as the reference reader requires
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [begin, end, name] of ranges) {
    check(begin === at, OP, `'${name}': data_offsets [${begin}, ${end}] ${begin < at ? 'overlap the previous tensor' : `leave a hole after offset ${at}`}`);
    at = end;
  }
  check(at === dataBytes, OP, `the tensors end at data offset ${at} but the file holds ${dataBytes} data bytes after the header`);
  // in file order, which is the writer's order (JSON objects list integer-like keys first)
  const tensors = new Map(ranges.map(([, , name]) => [name, entries.get(name)!]));
  return { tensors, metadata };
}

/** Decodes IEEE half precision. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * Converts one stored tensor to our dtypes: F32/F16/BF16/F64 → f32, I32/I64 → i32, U32 → u32.
 * A value that does not fit (an F64 beyond the f32 range, an I64 beyond int32) is an error naming the
 * tensor and the element. On the CPU backend F64 values are kept exactly (it stores floats in float64).
 */
export function rawToTensor(name: string, raw: RawTensor, device: Backend = backend()): Tensor {
  const b = raw.bytes.slice(); // an aligned copy
  const n = shapeSize(raw.shape);
  let values: HostArray;
  let dtype: DType = 'f32';
  switch (raw.dtype) {
    case 'F32':
      values = new Float32Array(b.buffer, 0, n);
      break;
    case 'F64': {
      const f64 = new Float64Array(b.buffer, 0, n);
      const bad = f64.findIndex((v) => Number.isFinite(v) && Math.abs(v) > F32_MAX);
      check(bad < 0, OP, () => `'${name}': F64 element ${bad} (${f64[bad]}) does not fit in f32`);
      values = device === 'cpu' ? f64 : Float32Array.from(f64);
      break;
    }
    case 'F16':
      values = Float32Array.from(new Uint16Array(b.buffer, 0, n), halfToFloat);
      break;
    case 'BF16':
      // bfloat16 is the top half of a float32
      values = new Float32Array(Uint32Array.from(new Uint16Array(b.buffer, 0, n), (h) => h << 16).buffer);
      break;
    case 'I64': {
      const i64 = new BigInt64Array(b.buffer, 0, n);
      const bad = i64.findIndex((v) => v < -2147483648n || v > 2147483647n);
      check(bad < 0, OP, () => `'${name}': I64 element ${bad} (${i64[bad]}) does not fit in i32`);
      values = Int32Array.from(i64, Number);
      dtype = 'i32';
      break;
    }
    case 'I32':
      values = new Int32Array(b.buffer, 0, n);
      dtype = 'i32';
      break;
    case 'U32':
      values = new Uint32Array(b.buffer, 0, n);
      dtype = 'u32';
      break;
  }
  return tensor(values, raw.shape, { dtype, device });
}

/** Parses a safetensors file into tensors on `device` (default: the active backend). */
export function loadSafetensors(file: Uint8Array, device: Backend = backend()): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = decodeSafetensors(file);
  return { tensors: new Map([...tensors].map(([name, raw]) => [name, rawToTensor(name, raw, device)])), metadata };
}

// ---------------------------------------------------------------- state dict checks

export interface StateDictReport {
  ok: boolean;
  missing: string[];
  unexpected: string[];
  mismatched: { name: string; expected: number[]; actual: number[] }[];
  /** One line per problem ('' when ok). */
  message: string;
}

/** Compares a state dict's names and shapes with the expected {name: shape}. */
export function checkStateDict(stateDict: TensorSource, expected: Map<string, Shape> | Record<string, Shape>): StateDictReport {
  const have = new Map(entriesOf(stateDict));
  const want = expected instanceof Map ? expected : new Map(Object.entries(expected));
  const missing = [...want.keys()].filter((k) => !have.has(k));
  const unexpected = [...have.keys()].filter((k) => !want.has(k));
  const mismatched = [...want]
    .filter(([k, s]) => have.has(k) && have.get(k)!.shape.join() !== s.join())
    .map(([name, s]) => ({ name, expected: [...s], actual: [...have.get(name)!.shape] }));
  const lines = [
    ...(missing.length ? [`missing: ${missing.join(', ')}`] : []),
    ...(unexpected.length ? [`unexpected: ${unexpected.join(', ')}`] : []),
    ...mismatched.map((m) => `shape mismatch for ${m.name}: ${fmtShape(m.actual)} in the state dict, ${fmtShape(m.expected)} expected`),
  ];
  return { ok: lines.length === 0, missing, unexpected, mismatched, message: lines.join('\n') };
}

// ---------------------------------------------------------------- checkpoints

/** What one checkpoint file holds. */
export interface Checkpoint {
  /** The model's state dict; its names are the file's tensor names. */
  model: TensorSource;
  /** Stored as tensors `optimizer.<key>` and the JSON metadata entry `optimizer`. */
  optimizer?: OptimizerStateDict;
  /** Run metadata (epoch, best accuracy, config, ...), stored as the JSON metadata entry `meta`. */
  meta?: Record<string, unknown>;
}

export interface LoadedCheckpoint {
  model: Map<string, Tensor>;
  optimizer: OptimizerStateDict | null;
  meta: Record<string, unknown>;
  /** The file's whole metadata map. */
  metadata: Record<string, string>;
}

const OPTIMIZER_PREFIX = 'optimizer.';

/** One safetensors file with the model's parameters under their own names, loadable by PyTorch's safetensors. */
export async function encodeCheckpoint(c: Checkpoint, opts: EncodeOptions = {}): Promise<Uint8Array> {
  const tensors = new Map(entriesOf(c.model));
  const metadata: Record<string, string> = { format: 'pt', meta: JSON.stringify(c.meta ?? {}) };
  if (c.optimizer) {
    const clash = [...tensors.keys()].find((k) => k.startsWith(OPTIMIZER_PREFIX));
    check(clash === undefined, 'encodeCheckpoint', `model key '${clash}' collides with the optimizer's '${OPTIMIZER_PREFIX}' prefix`);
    for (const [k, t] of c.optimizer.tensors) tensors.set(OPTIMIZER_PREFIX + k, t);
    metadata.optimizer = JSON.stringify(c.optimizer.scalars);
  }
  return saveSafetensors(tensors, metadata, opts);
}

/** Reads a checkpoint written by encodeCheckpoint (or any safetensors file: then it is all model). */
export function decodeCheckpoint(file: Uint8Array, device: Backend = backend()): LoadedCheckpoint {
  const { tensors, metadata } = loadSafetensors(file, device);
  const parse = (key: string): unknown => {
    try {
      return JSON.parse(metadata[key]);
    } catch (e) {
      throw new Error(`${OP}: metadata '${key}' is not valid JSON: ${(e as Error).message}`);
    }
  };
  const model = new Map<string, Tensor>();
  const optimizerTensors = new Map<string, Tensor>();
  const hasOptimizer = 'optimizer' in metadata;
  for (const [k, t] of tensors) {
    if (hasOptimizer && k.startsWith(OPTIMIZER_PREFIX)) optimizerTensors.set(k.slice(OPTIMIZER_PREFIX.length), t);
    else model.set(k, t);
  }
  const meta = 'meta' in metadata ? parse('meta') : {};
  check(meta !== null && typeof meta === 'object', OP, `metadata 'meta' is not a JSON object`);
  let optimizer: OptimizerStateDict | null = null;
  if (hasOptimizer) {
    const scalars = parse('optimizer') as OptimizerScalars;
    check(scalars !== null && typeof scalars.type === 'string' && Array.isArray(scalars.paramGroups) && scalars.paramGroups.every((g) => Array.isArray(g?.params)) &&
      scalars.steps !== null && typeof scalars.steps === 'object', OP, `metadata 'optimizer' is not an optimizer state`);
    optimizer = { tensors: optimizerTensors, scalars };
  }
  return { model, optimizer, meta: meta as Record<string, unknown>, metadata };
}
