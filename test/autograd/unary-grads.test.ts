// One gradient check per elementwise op, generated from the op list (UNARY_OPS): the analytic
// backward on the float64 CPU backend against central finite differences, then the WebGPU backward
// against the CPU backward. Inputs are drawn inside each op's domain and away from its kinks and
// jumps, where a finite difference would straddle them. The domain table is a Record over UnaryOp,
// so a new op without an entry fails to compile, as one without a gradient rule does in
// autograd/ops.ts (UNARY_GRADS).
import { describe, expect, it } from 'vitest';
import { UNARY_OPS, UNARY_GRADS, unary, type UnaryOp } from '../../autograd/ops.js';
import { gradcheck, type Input } from './gradcheck.js';
import { randomArray } from '../helpers.js';

interface Domain {
  /** draws lie in [lo, hi] */
  lo: number;
  hi: number;
  /** points the draws keep at least `margin` away from (kinks, jumps, poles) */
  avoid?: number[];
  margin?: number;
  p0?: number;
  p1?: number;
}

const DOMAINS: Record<UnaryOp, Domain[]> = {
  neg: [{ lo: -1, hi: 1 }],
  abs: [{ lo: -1, hi: 1, avoid: [0], margin: 0.05 }],
  exp: [{ lo: -2, hi: 2 }],
  log: [{ lo: 0.3, hi: 3 }],
  sqrt: [{ lo: 0.3, hi: 3 }],
  rsqrt: [{ lo: 0.3, hi: 3 }],
  relu: [{ lo: -1, hi: 1, avoid: [0], margin: 0.05 }],
  sigmoid: [{ lo: -4, hi: 4 }],
  tanh: [{ lo: -2, hi: 2 }],
  square: [{ lo: -1.5, hi: 1.5 }],
  reciprocal: [{ lo: -2, hi: 2, avoid: [0], margin: 0.4 }],
  sign: [{ lo: -1, hi: 1, avoid: [0], margin: 0.05 }],
  floor: [{ lo: -2.5, hi: 2.5, avoid: [-2, -1, 0, 1, 2], margin: 0.05 }],
  step: [{ lo: -1, hi: 1, avoid: [0], margin: 0.05 }],
  affine: [{ lo: -1, hi: 1, p0: -2.5, p1: 0.3 }],
  clamp: [{ lo: -1, hi: 1, avoid: [-0.5, 0.5], margin: 0.05, p0: -0.5, p1: 0.5 }],
  // an integer exponent is defined for negative x; a fractional one only for x > 0
  pow: [{ lo: -1.5, hi: 1.5, p0: 3 }, { lo: 0.3, hi: 2, p0: 1.5 }, { lo: -1, hi: 1, p0: 2 }],
};

/** Draws n values in [lo, hi], redrawing any closer than `margin` to a point to avoid. */
function draw(d: Domain, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    do v = randomArray(1, d.lo, d.hi)[0];
    while ((d.avoid ?? []).some((a) => Math.abs(v - a) < (d.margin ?? 0)));
    out[i] = v;
  }
  return out;
}

// odd sizes and a size-1 dimension
const SHAPE = [3, 1, 5];

describe('unary gradients, one check per op of UNARY_OPS', () => {
  it('every op has a gradient rule or is declared zero-gradient, and a domain here', () => {
    expect(Object.keys(UNARY_GRADS).sort()).toEqual([...UNARY_OPS].sort());
    expect(Object.keys(DOMAINS).sort()).toEqual([...UNARY_OPS].sort());
    expect(UNARY_OPS.filter((op) => UNARY_GRADS[op] === 'zero').sort()).toEqual(['floor', 'sign', 'step']);
  });

  for (const op of UNARY_OPS) {
    for (const d of DOMAINS[op]) {
      const params = d.p0 === undefined ? '' : ` (p0 = ${d.p0}${d.p1 === undefined ? '' : `, p1 = ${d.p1}`})`;
      it(`${op}${params}: backward matches finite differences and the GPU matches the CPU`, async () => {
        const x: Input = { values: draw(d, SHAPE.reduce((a, b) => a * b, 1)), shape: SHAPE };
        const { fd } = await gradcheck(([t]) => unary(op, t, d.p0 ?? 0, d.p1 ?? 0), [x]);
        expect(fd).toBeLessThan(1e-6);
      });
    }
  }
});
