// The op table: one registry pairing each differentiable op's forward (raw kernels) with its
// backward rule. autograd/ops.ts registers the core ops, autograd/nn-ops.ts and conv-ops.ts the network layers.

import type { Tensor } from '../kernels/tensor.js';
import { record } from './tape.js';

export interface OpContext<A> {
  inputs: Tensor[];
  out: Tensor;
  attrs: A;
}

export interface OpDef<A> {
  forward(inputs: Tensor[], attrs: A): Tensor;
  /** Gradients for each input (null where none flows), given the upstream gradient g. */
  backward(g: Tensor, ctx: OpContext<A>): (Tensor | null)[];
}

export const OP_TABLE = new Map<string, OpDef<never>>();
/** The file group that registered each op ('core', 'nn', 'conv'): each group's tests check that all of its ops have a gradient check. */
export const OP_GROUPS = new Map<string, string>();

/** Registers an op; returns a function that applies it and records it on the tape. */
export function defineOp<A>(name: string, def: OpDef<A>, group = 'core'): (inputs: Tensor[], attrs: A) => Tensor {
  if (OP_TABLE.has(name)) throw new Error(`op '${name}' is defined twice`);
  OP_TABLE.set(name, def as OpDef<never>);
  OP_GROUPS.set(name, group);
  return (inputs, attrs) => {
    const out = def.forward(inputs, attrs);
    return record(name, inputs, out, (g) => def.backward(g, { inputs, out, attrs }));
  };
}
