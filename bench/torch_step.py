#!/usr/bin/python3
"""The PyTorch peer of bench/train-step.js: the same CIFAR ResNet (Cao et al.'s resnet_cifar with
option-A shortcuts, n blocks per stage), batch, input size and step (forward, cross-entropy,
backward, SGD with momentum 0.9 and weight decay 1e-4), timed on the CPU.

    /usr/bin/python3 bench/torch_step.py --blocks 5 --batch 128 --size 32 --steps 10 --warmup 3 --threads 2

Prints one JSON object: the median ms per step and the settings. bench/train-step.js --peer torch
runs it and reports the ratio; nothing in the test suite needs Python.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ShortcutA(nn.Module):
    """Option A of He et al. 2016: subsample by 2 and zero-pad the channels (LDAM's LambdaLayer)."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = ShortcutA(planes) if stride != 1 or in_planes != planes else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(blocks):
                layers.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--blocks', type=int, required=True)
    p.add_argument('--batch', type=int, required=True)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads; 0 keeps the default')
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = CifarResNet(a.blocks, a.classes).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.arange(a.batch) % a.classes

    def step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        'peer': f'torch {torch.__version__} cpu',
        'threads': torch.get_num_threads(),
        'blocks': a.blocks, 'batch': a.batch, 'size': a.size, 'steps': a.steps,
        'ms_per_step': statistics.median(ms),
        'params': sum(t.numel() for t in net.parameters()),
    }))


if __name__ == '__main__':
    main()
