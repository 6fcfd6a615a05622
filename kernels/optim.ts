// Fused optimizer updates: one kernel per parameter tensor that reads the gradient and rewrites the
// parameter and its state buffers in place (no new buffers, no readback). Hyper-parameters are
// uniforms, so a new learning rate every iteration never recompiles. Each update has its float64
// CPU reference in the same function, following torch.optim's single-tensor code line by line.

import { check, fmtShape } from './errors.js';
import { runtime, type Bound } from './runtime.js';
import { dispatchFlat } from './split.js';
import { linearKernel, memoCode } from './wgsl.js';
import type { Tensor } from './tensor.js';

const WG = 256;
/** The storage element of the updates: 4 values per invocation when the size is a multiple of 4. */
const elem = (vec4: boolean): string => (vec4 ? 'vec4<f32>' : 'f32');

/** Checks that every tensor is a live f32 tensor of the parameter's shape on the parameter's backend. */
function checkState(op: string, param: Tensor, named: Record<string, Tensor | null>): void {
  for (const [name, t] of Object.entries({ param, ...named })) {
    if (!t) continue;
    check(!t.isDisposed, op, `${name} of shape ${fmtShape(t.shape)} was used after dispose()`);
    check(t.dtype === 'f32', op, `${name} must be f32, got ${t.dtype} ${fmtShape(t.shape)}`);
    check(t.shape.join() === param.shape.join(), op, `${name} has shape ${fmtShape(t.shape)}, the parameter ${fmtShape(param.shape)}`);
    check(t.device === param.device, op, `${name} lives on ${t.device}, the parameter on ${param.device}`);
    // WebGPU forbids binding one buffer twice when a binding is writable
    if (t !== param && param.device === 'webgpu') check(t.buffer !== param.buffer, op, `${name} shares its storage with the parameter`);
  }
}

export interface SGDHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/**
 * One torch.optim.SGD step on one parameter, in place (Sutskever et al. 2013 momentum as torch has it):
 *   g ← grad + wd·p;  b ← g on the first step, else μ·b + (1−τ)·g;  d ← g + μ·b (nesterov) or b;  p ← p − lr·d
 * `momentumBuffer` is null when momentum is 0; `first` says the buffer holds nothing yet.
 */
export function sgdUpdate(param: Tensor, grad: Tensor, momentumBuffer: Tensor | null, h: SGDHyper, first: boolean): void {
  const op = 'sgd';
  checkState(op, param, { grad, momentum_buffer: momentumBuffer });
  check((h.momentum === 0) === (momentumBuffer === null), op, `a momentum buffer is needed exactly when momentum != 0 (momentum ${h.momentum})`);
  if (param.device === 'cpu') {
    const p = param.cpu, g = grad.cpu, b = momentumBuffer?.cpu;
    for (let i = 0; i < p.length; i++) {
      let d = h.weightDecay !== 0 ? g[i] + h.weightDecay * p[i] : g[i];
      if (b) {
        b[i] = first ? d : h.momentum * b[i] + (1 - h.dampening) * d;
        d = h.nesterov ? d + h.momentum * b[i] : b[i];
      }
      p[i] = p[i] - h.lr * d;
    }
    return;
  }
  const withMomentum = momentumBuffer !== null;
  const vec4 = param.size % 4 === 0;
  const n = vec4 ? param.size / 4 : param.size;
  const k = runtime().kernel('optim.sgd', sgdCode(withMomentum, vec4));
  const buffers: Record<string, Bound> = { param: param.binding(), grad: grad.binding() };
  if (momentumBuffer) buffers.buf = momentumBuffer.binding();
  const uniforms = { lr: h.lr, momentum: h.momentum, one_minus_dampening: 1 - h.dampening, weight_decay: h.weightDecay, nesterov: Number(h.nesterov), first_step: Number(first) };
  dispatchFlat(k, buffers, {}, uniforms, n, vec4 ? 16 : 4, WG);
}

// vec4: one invocation updates 4 adjacent values (n counts vec4s); every expression is componentwise
const sgdCode = memoCode((withMomentum: boolean, vec4: boolean) => linearKernel({
  uniforms: { n: 'u32', lr: 'f32', momentum: 'f32', one_minus_dampening: 'f32', weight_decay: 'f32', nesterov: 'u32', first_step: 'u32' },
  read: { grad: elem(vec4) }, write: { param: elem(vec4), ...(withMomentum ? { buf: elem(vec4) } : {}) }, wg: WG, bound: 'n',
}, `  let w = param[i];
  var d = grad[i];
  if (p.weight_decay != 0.0) { d = d + p.weight_decay * w; }
  ${withMomentum ? `
  var b = d;
  if (p.first_step == 0u) { b = p.momentum * buf[i] + p.one_minus_dampening * d; }
  buf[i] = b;
  d = select(b, d + p.momentum * b, p.nesterov != 0u);` : ''}
  param[i] = w - p.lr * d;`));

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export interface AdamWState {
  expAvg: Tensor;
  expAvgSq: Tensor;
  /** Present with amsgrad. */
  maxExpAvgSq: Tensor | null;
}

/**
 * One torch.optim.AdamW step on one parameter, in place (Loshchilov & Hutter, ICLR 2019), `step` counting from 1:
 *   p ← p·(1 − lr·wd);  m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²;  v̂ ← max(v̂, v) (amsgrad, else v̂ = v)
 *   p ← p − (lr / (1−β1^t)) · m / (√v̂ / √(1−β2^t) + ε)
 */
export function adamwUpdate(param: Tensor, grad: Tensor, s: AdamWState, h: AdamWHyper, step: number): void {
  const op = 'adamw';
  checkState(op, param, { grad, exp_avg: s.expAvg, exp_avg_sq: s.expAvgSq, max_exp_avg_sq: s.maxExpAvgSq });
  check(Number.isInteger(step) && step >= 1, op, `step must be an integer >= 1, got ${step}`);
  // the scalars torch computes on the host, in double precision
  const decay = 1 - h.lr * h.weightDecay;
  const stepSize = h.lr / (1 - h.beta1 ** step);
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** step);
  if (param.device === 'cpu') {
    const p = param.cpu, g = grad.cpu, m = s.expAvg.cpu, v = s.expAvgSq.cpu, vmax = s.maxExpAvgSq?.cpu;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i] * decay;
      m[i] = m[i] + (1 - h.beta1) * (g[i] - m[i]);
      v[i] = v[i] * h.beta2 + (1 - h.beta2) * g[i] * g[i];
      let vhat = v[i];
      if (vmax) vhat = vmax[i] = Math.max(vmax[i], v[i]);
      p[i] = p[i] - stepSize * (m[i] / (Math.sqrt(vhat) / bc2Sqrt + h.eps));
    }
    return;
  }
  const amsgrad = s.maxExpAvgSq !== null;
  const vec4 = param.size % 4 === 0;
  const n = vec4 ? param.size / 4 : param.size;
  const k = runtime().kernel('optim.adamw', adamwCode(amsgrad, vec4));
  const buffers: Record<string, Bound> = { param: param.binding(), grad: grad.binding(), exp_avg: s.expAvg.binding(), exp_avg_sq: s.expAvgSq.binding() };
  if (s.maxExpAvgSq) buffers.max_exp_avg_sq = s.maxExpAvgSq.binding();
  const uniforms = { decay, one_minus_beta1: 1 - h.beta1, beta2: h.beta2, one_minus_beta2: 1 - h.beta2, eps: h.eps, step_size: stepSize, bc2_sqrt: bc2Sqrt };
  dispatchFlat(k, buffers, {}, uniforms, n, vec4 ? 16 : 4, WG);
}

const adamwCode = memoCode((amsgrad: boolean, vec4: boolean) => linearKernel({
  uniforms: { n: 'u32', decay: 'f32', one_minus_beta1: 'f32', beta2: 'f32', one_minus_beta2: 'f32', eps: 'f32', step_size: 'f32', bc2_sqrt: 'f32' },
  read: { grad: elem(vec4) }, write: { param: elem(vec4), exp_avg: elem(vec4), exp_avg_sq: elem(vec4), ...(amsgrad ? { max_exp_avg_sq: elem(vec4) } : {}) }, wg: WG, bound: 'n',
}, `  let g = grad[i];
  let w = param[i] * p.decay;
  let m = exp_avg[i] + p.one_minus_beta1 * (g - exp_avg[i]);
  let v = exp_avg_sq[i] * p.beta2 + p.one_minus_beta2 * g * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  ${amsgrad ? 'let vhat = max(max_exp_avg_sq[i], v);\n  max_exp_avg_sq[i] = vhat;' : 'let vhat = v;'}
  param[i] = w - p.step_size * (m / (sqrt(vhat) / p.bc2_sqrt + p.eps));`));
