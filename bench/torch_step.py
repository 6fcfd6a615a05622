#!/usr/bin/python3
"""The PyTorch peer of bench/train-step.js: the same model, batch, input size and step (forward,
cross-entropy, backward, SGD with momentum 0.9 and weight decay 1e-4). The CIFAR ResNets are Cao et
al.'s resnet_cifar with option-A shortcuts, n blocks per stage (--blocks); --model resnet18|34|50 is
torchvision's ImageNet ResNet (a local copy of its Bottleneck ResNet-50 when torchvision is absent).
--device cuda runs on the GPU in float32 with TF32 off (cudnn.benchmark on, as a tuned PyTorch
user would), synchronising before each clock read; --device auto takes CUDA when available.

    /usr/bin/python3 bench/torch_step.py --blocks 5 --batch 128 --size 32 --steps 10 --warmup 3 --threads 2
    python3 bench/torch_step.py --model resnet50 --batch 64 --size 224 --classes 1000 --device cuda

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


class Bottleneck(nn.Module):
    """torchvision's Bottleneck (stride on the 3x3, as in ResNet v1.5)."""

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = nn.Sequential(nn.Conv2d(in_planes, out, 1, stride, bias=False), nn.BatchNorm2d(out)) if stride != 1 or in_planes != out else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet50(nn.Module):
    """ResNet-50 as torchvision builds it (used only when torchvision is not installed)."""

    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, in_planes = [], 64
        for planes, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(n):
                layers.append(Bottleneck(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.fc(F.adaptive_avg_pool2d(self.layers(out), 1).flatten(1))


def imagenet_model(name, num_classes):
    try:
        import torchvision
        return getattr(torchvision.models, name)(num_classes=num_classes), f'torchvision {torchvision.__version__}'
    except ImportError:
        if name != 'resnet50':
            raise SystemExit(f'--model {name} needs torchvision (only resnet50 has a local copy)')
        return ResNet50(num_classes), 'local ResNet-50 (no torchvision)'


class PadShortcut(nn.Module):
    """LDAM-DRW's option-A shortcut: x[:, :, ::2, ::2] zero-padded by planes // 4 channels each side."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class CifarBasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential() if stride == 1 and in_planes == planes else PadShortcut(planes)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """LDAM-DRW's resnet_cifar (n blocks a stage; resnet32: 5, resnet8: 1), classifier `linear`."""

    def __init__(self, n, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(CifarBasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--blocks', type=int, help='CIFAR ResNet with this many blocks per stage (resnet8: 1, resnet32: 5)')
    p.add_argument('--model', help='torchvision ImageNet model instead: resnet18, resnet34, resnet50, resnext50_32x4d')
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda', 'auto'])
    p.add_argument('--batch', type=int, required=True)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads; 0 keeps the default')
    a = p.parse_args()
    if (a.blocks is None) == (a.model is None):
        p.error('give exactly one of --blocks (CIFAR ResNet) and --model (torchvision ResNet)')
    device = 'cuda' if a.device == 'cuda' or (a.device == 'auto' and torch.cuda.is_available()) else 'cpu'
    if device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: torch.cuda.is_available() is False')
    if a.threads:
        torch.set_num_threads(a.threads)
    if device == 'cuda':
        # float32 as ours: no TF32 in matmul or convolution
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    if a.model:
        net, source = imagenet_model(a.model, a.classes)
    else:
        net, source = CifarResNet(a.blocks, a.classes), 'cifar resnet (option A)'
    net = net.to(device).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch, 3, a.size, a.size, device=device)
    y = torch.arange(a.batch, device=device) % a.classes
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

    def step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()

    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        'peer': f'torch {torch.__version__} {device}' + (f' ({torch.cuda.get_device_name()})' if device == 'cuda' else ''),
        'model': a.model or f'cifar resnet, {a.blocks} blocks per stage', 'source': source,
        'threads': torch.get_num_threads(),
        'blocks': a.blocks, 'batch': a.batch, 'size': a.size, 'steps': a.steps,
        'ms_per_step': statistics.median(ms),
        'params': sum(t.numel() for t in net.parameters()),
    }))


if __name__ == '__main__':
    main()
