#!/usr/bin/python3
"""Stage 1 on PyTorch DistributedDataParallel, for when one machine is not enough; stage 2 and the
tables then run in longtail-webgpu (`node tasks/imagenet-lt.js --init-from OUT.safetensors ...`).

Launch with torchrun, one process per GPU (NCCL) or per CPU slot (gloo):

    /usr/bin/python3 -m torch.distributed.run --nproc_per_node 2 scripts/ddp_stage1.py --backend gloo \\
        --data-root assets/cifar10-lt-mini --train-list train.txt --num-classes 10 --model resnet8 \\
        --image-size 32 --epochs 1 --batch-size 16 --out stage1.safetensors

It reads the same list files as the tasks (ImageNet-LT format: `relative/or/absolute/path label` a
line, relative paths under --data-root), builds the model of the same name (resnet8 / resnet32: the
CIFAR ResNet of LDAM-DRW, option-A shortcuts, classifier `linear`; resnet18/34/50, resnext50:
torchvision's, classifier `fc`), trains it with SGD + momentum, cross-entropy and a per-epoch cosine
schedule on each process's DistributedSampler shard (the last partial batch dropped), and rank 0
writes model.state_dict() as safetensors with torchvision's names (num_batches_tracked as I64) by a
small writer below: the tasks' --init-from and --stage1-checkpoint read it. With --test-list, rank 0
also prints the top-1 accuracy on it with the tasks' evaluation transform, to compare with the
baseline row of `--eval-only`.

Augmentation (--aug): imagenet (RandomResizedCrop, horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0),
ImageNet mean/std; evaluation Resize(round(size·256/224)) + CenterCrop(size)), as imagenet-lt on a
--data-root; or cifar (RandomCrop(size, padding 4), flip, LDAM's CIFAR mean/std; evaluation
CenterCrop(size)), as imagenet-lt on its embedded set.
"""

import argparse
import json
import math
import os
import struct
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image

# the CIFAR ResNet (LDAM-DRW's names) has one home: bench/torch_step.py, the train-step bench's peer
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench'))
from torch_step import CifarResNet  # noqa: E402

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.201)


# ---------------------------------------------------------------- data

class ListDataset(torch.utils.data.Dataset):
    """`path label` lines; a relative path is under root, an absolute one is used as it is."""

    def __init__(self, root, list_file, num_classes, transform):
        path = list_file if os.path.isabs(list_file) else os.path.join(root, list_file)
        self.items = []
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                parts = line.rsplit(None, 1)
                if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                    sys.exit(f'{path}:{n}: expected "path label", got {line!r}')
                label = int(parts[1])
                if not 0 <= label < num_classes:
                    sys.exit(f'{path}:{n}: label {label} is outside [0, {num_classes})')
                file = parts[0] if os.path.isabs(parts[0]) else os.path.join(root, parts[0])
                self.items.append((file, label))
        if not self.items:
            sys.exit(f'{path}: the list is empty')
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        file, label = self.items[i]
        with open(file, 'rb') as f:
            img = Image.open(f).convert('RGB')
        return self.transform(img), label


def transforms_for(aug, size):
    if aug == 'imagenet':
        norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        train = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4, 0), T.ToTensor(), norm])
        test = T.Compose([T.Resize(round(size * 256 / 224)), T.CenterCrop(size), T.ToTensor(), norm])
    else:
        norm = T.Normalize(CIFAR_MEAN, CIFAR_STD)
        train = T.Compose([T.RandomCrop(size, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), norm])
        test = T.Compose([T.CenterCrop(size), T.ToTensor(), norm])
    return train, test


# ---------------------------------------------------------------- models (names as the tasks' --model)

def make_model(name, num_classes):
    if name == 'resnet8':
        return CifarResNet(1, num_classes)
    if name == 'resnet32':
        return CifarResNet(5, num_classes)
    ctor = {'resnet18': torchvision.models.resnet18, 'resnet34': torchvision.models.resnet34,
            'resnet50': torchvision.models.resnet50, 'resnext50': torchvision.models.resnext50_32x4d}[name]
    return ctor(num_classes=num_classes)


# ---------------------------------------------------------------- safetensors writer

SAFETENSORS_DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
                      torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL'}


def save_safetensors(path, tensors, metadata=None):
    """The safetensors layout: an 8-byte little-endian header length, the JSON header (name → dtype,
    shape, [begin, end) byte offsets into the data; padded with spaces to a multiple of 8), then each
    tensor's raw little-endian bytes, contiguous, in header order."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in SAFETENSORS_DTYPES:
            sys.exit(f'save_safetensors: {name} has dtype {t.dtype}, which the writer does not map')
        # view as bytes: torch's storage is little-endian on every platform torch supports
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b''
        header[name] = {'dtype': SAFETENSORS_DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(',', ':')).encode('utf-8')
    head += b' ' * (-len(head) % 8)
    tmp = f'{path}.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---------------------------------------------------------------- training

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', required=True)
    p.add_argument('--train-list', required=True, help='list file, relative to --data-root or absolute')
    p.add_argument('--test-list', help='also report top-1 on this list (rank 0)')
    p.add_argument('--num-classes', type=int, required=True)
    p.add_argument('--model', default='resnet50', choices=['resnet8', 'resnet32', 'resnet18', 'resnet34', 'resnet50', 'resnext50'])
    p.add_argument('--aug', default='imagenet', choices=['imagenet', 'cifar'])
    p.add_argument('--image-size', type=int, default=224)
    p.add_argument('--epochs', type=int, default=90)
    p.add_argument('--batch-size', type=int, default=256, help='images per process and step')
    p.add_argument('--lr', type=float, default=0.1, help='base lr, annealed by cosine per epoch to 0')
    p.add_argument('--momentum', type=float, default=0.9)
    p.add_argument('--weight-decay', type=float, default=5e-4)
    p.add_argument('--workers', type=int, default=2, help='DataLoader workers per process')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--backend', default='nccl', choices=['nccl', 'gloo'], help='nccl on GPUs; gloo on CPUs')
    p.add_argument('--out', required=True, help='the .safetensors file rank 0 writes')
    a = p.parse_args()

    dist.init_process_group(a.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get('LOCAL_RANK', 0))
    if a.backend == 'nccl':
        torch.cuda.set_device(local)
        dev = torch.device('cuda', local)
    else:
        dev = torch.device('cpu')
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get('LOCAL_WORLD_SIZE', world))))
    torch.manual_seed(a.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)

    train_tf, test_tf = transforms_for(a.aug, a.image_size)
    train = ListDataset(a.data_root, a.train_list, a.num_classes, train_tf)
    sampler = torch.utils.data.distributed.DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=a.seed, drop_last=False)
    loader = torch.utils.data.DataLoader(train, batch_size=a.batch_size, sampler=sampler, num_workers=a.workers, drop_last=True, pin_memory=a.backend == 'nccl')
    if len(loader) == 0:
        sys.exit(f'{len(train)} images over {world} processes give no full batch of {a.batch_size}: lower --batch-size')

    model = make_model(a.model, a.num_classes).to(dev)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[local] if a.backend == 'nccl' else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    if rank == 0:
        print(f'ddp_stage1: {a.model}, {world} processes ({a.backend}), {len(train)} images, {len(loader)} steps/epoch of {a.batch_size} per process, {a.epochs} epochs', flush=True)
    t0 = time.time()
    for epoch in range(a.epochs):
        lr = a.lr * (1 + math.cos(math.pi * epoch / a.epochs)) / 2
        for g in opt.param_groups:
            g['lr'] = lr
        sampler.set_epoch(epoch)
        ddp.train()
        total, steps = torch.zeros((), device=dev), 0
        for x, y in loader:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            loss = F.cross_entropy(ddp(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
            steps += 1
        dist.all_reduce(total)
        if rank == 0:
            print(f'epoch {epoch + 1}/{a.epochs}: lr {lr:.4g}, mean loss {total.item() / (steps * world):.4f}, {time.time() - t0:.1f} s', flush=True)

    if rank == 0:
        # model, not ddp: torchvision's names, without DDP's 'module.' (the tasks drop it anyway)
        state = model.state_dict()
        save_safetensors(a.out, state, {'format': 'pt', 'model': a.model, 'epochs': a.epochs, 'world_size': world})
        print(f'wrote {a.out}: {len(state)} tensors', flush=True)
        if a.test_list:
            test = ListDataset(a.data_root, a.test_list, a.num_classes, test_tf)
            model.eval()
            correct = 0
            with torch.no_grad():
                for x, y in torch.utils.data.DataLoader(test, batch_size=256, num_workers=a.workers):
                    correct += (model(x.to(dev)).argmax(1).cpu() == y).sum().item()
            print(f'top-1 on {a.test_list}: {100 * correct / len(test):.2f}% ({correct}/{len(test)})', flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
