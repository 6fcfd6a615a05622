#!/usr/bin/python3
"""Golden values for data/detection-transforms.ts from torchvision's GeneralizedRCNNTransform
(Debian python3-torchvision 0.14 / torch 1.13): normalisation, resize (image bilinear, masks
nearest, boxes), padding to a multiple of 32 and the recorded sizes, on small seeded random images.

    scripts/make-detection-transform-fixtures.py   ->  test/fixtures/detection-transforms/rcnn-transform.json
"""
import json
import os

import numpy as np
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'detection-transforms', 'rcnn-transform.json')



def f32(t):
    """float32 values as their shortest decimal (Math.fround of it gives the value back)."""
    return [float(repr(np.float32(v))) for v in t.flatten().tolist()]


def main():
    g = torch.Generator().manual_seed(0)
    cases = []
    # (min_size, max_size, image sizes): shorter side wins; the longer side caps; upsampling and downsampling
    for min_size, max_size, sizes in [(16, 30, [(13, 17), (20, 9)]), (24, 24, [(11, 31)]), (9, 100, [(27, 18), (9, 9), (40, 7)])]:
        t = GeneralizedRCNNTransform(min_size=min_size, max_size=max_size, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
        t.eval()
        images, targets = [], []
        for (h, w) in sizes:
            img = torch.rand(3, h, w, generator=g)
            n = 3
            x1 = torch.rand(n, generator=g) * (w - 2)
            y1 = torch.rand(n, generator=g) * (h - 2)
            bw = torch.rand(n, generator=g) * (w - x1)
            bh = torch.rand(n, generator=g) * (h - y1)
            boxes = torch.stack([x1, y1, x1 + bw, y1 + bh], 1)
            masks = (torch.rand(n, h, w, generator=g) < 0.4).to(torch.uint8)
            images.append(img)
            targets.append({'boxes': boxes, 'labels': torch.arange(n), 'masks': masks})
        ins = [{'image': f32(im), 'height': im.shape[1], 'width': im.shape[2],
                'boxes': f32(tg['boxes']), 'masks': tg['masks'].flatten().tolist()} for im, tg in zip(images, targets)]
        with torch.no_grad():
            il, outs = t([im.clone() for im in images], [{k: v.clone() for k, v in tg.items()} for tg in targets])
        cases.append({
            'minSize': min_size, 'maxSize': max_size, 'inputs': ins,
            'tensorShape': list(il.tensors.shape), 'tensor': f32(il.tensors),
            'imageSizes': [list(s) for s in il.image_sizes],
            'boxes': [f32(o['boxes']) for o in outs],
            'masks': [o['masks'].flatten().tolist() for o in outs],
        })
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump({'torch': torch.__version__, 'cases': cases}, f, separators=(',', ':'))
    print(OUT, os.path.getsize(OUT), 'bytes')


if __name__ == '__main__':
    main()
