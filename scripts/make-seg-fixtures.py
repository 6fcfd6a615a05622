#!/usr/bin/python3
"""Fixtures for test/segmentation/models.test.ts, made with Debian's python3-torchvision (torch 1.13,
torchvision 0.14) on a development machine; CI never runs this.

1. torchvision-keys.json: every state-dict key and shape of
   torchvision.models.segmentation.fcn_resnet50 and deeplabv3_resnet50 (weights=None,
   weights_backbone=None, aux_loss=True, 21 classes). Names and shapes only (the weights are ~160 MB).
2. tiny-{fcn,deeplabv3}.safetensors: the same torchvision classes (ResNet + Bottleneck with
   replace_stride_with_dilation=[False, True, True], IntermediateLayerGetter, FCNHead, ASPP,
   DeepLabV3/FCN) at a narrow width, so every module-name pattern is kept: stem and layer planes
   4·[1, 2, 4, 8] with one Bottleneck per layer, ASPP/head width 16, 5 classes. BN weights, biases and
   running statistics are random (not torchvision's 1/0 init), so eval-mode BN is not the identity.
   The file holds the state dict (f32; num_batches_tracked i64), the input "input" [2, 3, 37, 45] and
   torchvision's eval outputs "expected.out" and "expected.aux".

Run: /usr/bin/python3 scripts/make-seg-fixtures.py
"""
import json
import os
import struct
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models import resnet as tvr
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation import deeplabv3_resnet50, fcn_resnet50
from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabV3
from torchvision.models.segmentation.fcn import FCN, FCNHead

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'segmentation')
BASE, CLASSES, HEAD = 4, 5, 16


def write_safetensors(path, tensors):
    """The safetensors layout: u64 header length, JSON header (8-byte aligned), raw little-endian data."""
    header, blobs, offset = OrderedDict(), [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: 'F32', torch.int64: 'I64'}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * (-len(raw) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


class NarrowResNet(tvr.ResNet):
    """torchvision's ResNet with the stem and layer planes scaled from 64 to BASE (same module names)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conv1 = nn.Conv2d(3, BASE, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(BASE)
        self.fc = nn.Linear(8 * BASE * 4, 10)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:
            self.inplanes = BASE
        return super()._make_layer(block, planes * BASE // 64, blocks, stride, dilate)


def narrow_backbone():
    r = NarrowResNet(tvr.Bottleneck, [1, 1, 1, 1], replace_stride_with_dilation=[False, True, True])
    return IntermediateLayerGetter(r, return_layers={'layer4': 'out', 'layer3': 'aux'})


def randomize(model, gen):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype != torch.float32:
                t.fill_(3)
            elif name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=gen) * 1.5 + 0.5)
            elif name.endswith('running_mean') or name.endswith('bn1.bias') or 'bias' in name:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.2)
            elif t.dim() == 1:  # BN weight
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:  # conv weight: He-normal, so activations keep their scale
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)


def tiny(arch):
    out_ch, aux_ch = 8 * BASE * 4, 4 * BASE * 4
    if arch == 'fcn':
        return FCN(narrow_backbone(), FCNHead(out_ch, CLASSES), FCNHead(aux_ch, CLASSES))
    # torchvision's DeepLabHead layout (ASPP + 3x3 conv + BN + ReLU + 1x1 conv) at width HEAD
    head = nn.Sequential(ASPP(out_ch, [12, 24, 36], HEAD), nn.Conv2d(HEAD, HEAD, 3, padding=1, bias=False), nn.BatchNorm2d(HEAD), nn.ReLU(), nn.Conv2d(HEAD, CLASSES, 1))
    return DeepLabV3(narrow_backbone(), head, FCNHead(aux_ch, CLASSES))


def main():
    os.makedirs(OUT, exist_ok=True)
    keys = {}
    for name, fn in [('fcn_resnet50', fcn_resnet50), ('deeplabv3_resnet50', deeplabv3_resnet50)]:
        sd = fn(weights=None, weights_backbone=None, aux_loss=True, num_classes=21).state_dict()
        keys[name] = [[k, list(v.shape)] for k, v in sd.items()]
    with open(os.path.join(OUT, 'torchvision-keys.json'), 'w') as f:
        json.dump({'torchvision': __import__('torchvision').__version__, 'models': keys}, f, separators=(',', ':'))

    for i, arch in enumerate(['fcn', 'deeplabv3']):
        gen = torch.Generator().manual_seed(1234 + i)
        model = tiny(arch)
        randomize(model, gen)
        model.eval()
        x = torch.randn(2, 3, 37, 45, generator=gen)
        with torch.no_grad():
            y = model(x)
        tensors = OrderedDict(model.state_dict())
        tensors['input'] = x
        tensors['expected.out'] = y['out']
        tensors['expected.aux'] = y['aux']
        path = os.path.join(OUT, f'tiny-{arch}.safetensors')
        write_safetensors(path, tensors)
        print(path, os.path.getsize(path), 'bytes', sum(v.numel() for v in model.state_dict().values()), 'state values')


if __name__ == '__main__':
    main()
