// Tensors larger than one storage binding (maxStorageBufferBindingSize: 128 MiB on lavapipe, while
// one buffer may reach maxBufferSize). Ops split their work two ways:
// - flat kernels (item i of every operand at item i) bind each operand in ranges at aligned byte
//   offsets and dispatch once per range: no copies (dispatchFlat);
// - ops whose rows along dim 0 are independent (images of a batch, channels of a plane) run on
//   chunks of rows copied out of the big tensor and copy their results back (byRows): the copies
//   run at copyBufferToBuffer speed, well above a kernel's, and need no change to the kernel.
// Ops that reduce over dim 0 (batch-norm statistics, wgrad, sums) combine per-chunk partials.
// runtime().setBindingLimitForTesting lowers the limit so that tests reach these paths.

import { check, fmtShape } from './errors.js';
import { grid1, runtime, type Bound, type Kernel, type Uniforms } from './runtime.js';
import { Tensor } from './tensor.js';

/** Whether any of the (GPU) tensors is larger than one binding. */
export function overBinding(...ts: (Tensor | null | undefined)[]): boolean {
  const t0 = ts.find((t) => t);
  if (!t0 || t0.device === 'cpu') return false;
  const limit = runtime().bindingLimit;
  return ts.some((t) => t && t.size * 4 > limit);
}

/**
 * Dispatches a linear kernel (uniform `n`, one item per invocation, `wg` per workgroup) over `n`
 * items: at once when the operands fit one binding, else in ranges whose starts are multiples of
 * the binding alignment. `ranged` operands hold `itemBytes` per item and are bound from the range's
 * first item; `whole` ones (per-channel vectors, ...) are bound whole every time.
 */
export function dispatchFlat(k: Kernel, ranged: Record<string, Bound>, whole: Record<string, Bound>, uniforms: Uniforms, n: number, itemBytes: number, wg: number): void {
  const rt = runtime();
  if (n * itemBytes <= rt.bindingLimit) {
    rt.dispatch(k, { ...ranged, ...whole }, { ...uniforms, n }, grid1(Math.ceil(n / wg)));
    return;
  }
  const align = Math.max(1, rt.bindingAlignment / itemBytes);
  const per = Math.floor(rt.bindingLimit / itemBytes / align) * align;
  check(per > 0, k.name, () => `${align} items of ${itemBytes} bytes exceed the binding limit of ${rt.bindingLimit}`);
  const perItem = Object.fromEntries(Object.keys(ranged).map((name) => [name, itemBytes]));
  for (let a = 0; a < n; a += per) {
    const len = Math.min(per, n - a);
    dispatchRange(k, ranged, perItem, whole, a, len, { ...uniforms, n: len }, grid1(Math.ceil(len / wg)));
  }
}

/**
 * One dispatch over items [a, a + len): each of `ranged` holds perItem[name] bytes per item and is
 * bound from item a, in place when that offset is aligned, else through a scratch copy (copied in
 * before, and back after when the kernel writes it).
 */
export function dispatchRange(k: Kernel, ranged: Record<string, Bound>, perItem: Record<string, number>, whole: Record<string, Bound>, a: number, len: number, uniforms: Uniforms, groups: [number, number?, number?]): void {
  const rt = runtime();
  const named: Record<string, Bound> = { ...whole };
  const scratch: { name: string; from: Bound; offset: number; t: Tensor }[] = [];
  for (const [name, b] of Object.entries(ranged)) {
    const offset = (b.offset ?? 0) + a * perItem[name];
    const bytes = len * perItem[name];
    if (offset % rt.bindingAlignment === 0) named[name] = { ...b, offset, bytes };
    else {
      const t = Tensor.empty([bytes / 4], 'u32', 'webgpu', k.name);
      rt.copy(b.buffer, offset, t.buffer, 0, bytes);
      named[name] = { buffer: t.buffer, bytes, dtype: b.dtype };
      scratch.push({ name, from: b, offset, t });
    }
  }
  rt.dispatch(k, named, uniforms, groups);
  for (const { name, from, offset, t } of scratch) {
    if (!k.storage.find((s) => s.name === name)!.readOnly) rt.copy(t.buffer, 0, from.buffer, offset, t.size * 4);
    t.dispose();
  }
}

/** Rows [a, b) of t along dim 0, copied into a tensor of their own. */
export function sliceRows(t: Tensor, a: number, b: number): Tensor {
  const row = t.size / t.shape[0];
  const out = Tensor.empty([b - a, ...t.shape.slice(1)], t.dtype, t.device, 'sliceRows');
  runtime().copy(t.buffer, a * row * 4, out.buffer, 0, out.size * 4);
  return out;
}

/** Copies src into dst's rows from row a on (dst and src share the shape past dim 0). */
export function writeRows(dst: Tensor, a: number, src: Tensor): void {
  runtime().copy(src.buffer, 0, dst.buffer, (a * dst.size / dst.shape[0]) * 4, src.size * 4);
}

/**
 * Rows of dim 0 per chunk such that `rowBytes` (the largest bytes per row among the tensors the
 * op binds for one chunk) fits one binding; a single row that does not is a clear error.
 */
export function rowsPerChunk(op: string, rows: number, rowBytes: number, what: () => string): number {
  const limit = runtime().bindingLimit;
  check(rowBytes <= limit, op, () => `${what()}: one row along dim 0 takes ${rowBytes} bytes, over the binding limit of ${limit} bytes, and the op cannot split it further`);
  return Math.max(1, Math.min(rows, Math.floor(limit / Math.max(rowBytes, 1))));
}

/**
 * Runs `fn` on chunks of rows of the `split` tensors (all with the same dim 0; `rowBytes` as in
 * rowsPerChunk, covering fn's outputs too) and concatenates each of fn's outputs along dim 0.
 * Each chunk's temporaries are submitted before the next chunk, so the pool reuses their buffers.
 */
export function byRows(op: string, split: Tensor[], rowBytes: number, fn: (chunks: Tensor[], a: number, b: number) => Tensor[]): Tensor[] {
  const rows = split[0].shape[0];
  const per = rowsPerChunk(op, rows, rowBytes, () => split.map((t) => fmtShape(t.shape)).join(', '));
  let outs: Tensor[] | null = null;
  for (let a = 0; a < rows; a += per) {
    const b = Math.min(rows, a + per);
    const chunks = split.map((t) => sliceRows(t, a, b));
    const parts = fn(chunks, a, b);
    outs ??= parts.map((p) => Tensor.empty([rows, ...p.shape.slice(1)], p.dtype, p.device, op));
    parts.forEach((p, i) => writeRows(outs![i], a, p));
    for (const t of [...chunks, ...parts]) t.dispose();
    runtime().flush();
  }
  return outs!;
}
