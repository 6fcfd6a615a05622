// torchvision.ops.FrozenBatchNorm2d: batch normalisation whose statistics and affine parameters are
// fixed buffers (no gradient, never updated): y = (x − running_mean) / √(running_var + eps) · weight
// + bias. Detection backbones use it because their batches are too small for batch statistics.
// Its state-dict entries are weight, bias, running_mean, running_var (all buffers); a checkpoint's
// num_batches_tracked is dropped on load, as torchvision's _load_from_state_dict does.

import { backend } from '../kernels/device.js';
import { full } from '../kernels/creation.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { batchNorm2d } from '../autograd/nn-ops.js';
import type { DeviceOption } from './layers.js';
import { Module, type StateDict } from './module.js';

export class FrozenBatchNorm2d extends Module {
  declare weight: Tensor;
  declare bias: Tensor;
  declare running_mean: Tensor;
  declare running_var: Tensor;

  constructor(
    readonly numFeatures: number,
    { eps = 1e-5, device = backend() }: DeviceOption & { eps?: number } = {},
  ) {
    super();
    this.eps = eps;
    this.registerBuffer('weight', full([numFeatures], 1, { device }));
    this.registerBuffer('bias', full([numFeatures], 0, { device }));
    this.registerBuffer('running_mean', full([numFeatures], 0, { device }));
    this.registerBuffer('running_var', full([numFeatures], 1, { device }));
  }

  readonly eps: number;

  forward(x: Tensor): Tensor {
    check(x.rank === 4 && x.shape[1] === this.numFeatures, 'FrozenBatchNorm2d', () => `expects an input [N, ${this.numFeatures}, H, W], got ${fmtShape(x.shape)}`);
    return batchNorm2d(x, this.weight, this.bias, this.running_mean, this.running_var, { training: false, momentum: 0, eps: this.eps });
  }
}

/** The state dict without the num_batches_tracked entries of model's FrozenBatchNorm2d layers (torchvision drops them on load). */
export function dropFrozenBatchCounters(model: Module, source: StateDict | Record<string, Tensor>): StateDict {
  const src = source instanceof Map ? new Map(source) : new Map(Object.entries(source));
  for (const [name, m] of model.namedModules()) {
    if (m instanceof FrozenBatchNorm2d) src.delete(name ? `${name}.num_batches_tracked` : 'num_batches_tracked');
  }
  return src;
}
