// Errors that say which op failed and with which shapes, so a bad call never reaches Dawn's
// validation layer (or silently computes garbage).

export class OpError extends Error {
  constructor(readonly op: string, detail: string) {
    super(`${op}: ${detail}`);
    this.name = 'OpError';
  }
}

export const fmtShape = (s: readonly number[]): string => `[${s.join(', ')}]`;

export function check(cond: unknown, op: string, detail: string | (() => string)): asserts cond {
  if (!cond) throw new OpError(op, typeof detail === 'string' ? detail : detail());
}

/** Normalises a possibly negative axis against `rank`, throwing a named error when out of range. */
export function normAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  check(Number.isInteger(axis) && a >= 0 && a < Math.max(rank, 1), op, `axis ${axis} is out of range for a tensor of rank ${rank}`);
  return a;
}

/** Checks that every named tensor is f32, naming the op, the tensor and its shape. */
export function checkF32(op: string, ...ts: [string, { dtype: string; shape: readonly number[] }][]): void {
  for (const [name, t] of ts) check(t.dtype === 'f32', op, () => `needs f32 tensors, got ${name} ${t.dtype} ${fmtShape(t.shape)}`);
}

/** Checks that an op's tensor inputs are alive and on one backend, naming the op and the shapes. */
export function checkInputs(op: string, inputs: readonly { isDisposed: boolean; shape: readonly number[]; device: string }[]): void {
  for (const t of inputs) check(!t.isDisposed, op, () => `input of shape ${fmtShape(t.shape)} was used after dispose()`);
  const devs = new Set(inputs.map((t) => t.device));
  check(devs.size <= 1, op, () => `inputs live on different backends (${inputs.map((t) => `${fmtShape(t.shape)} on ${t.device}`).join(', ')})`);
}
