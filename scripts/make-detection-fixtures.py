#!/usr/bin/python3
# Golden values for the detection primitives, from torchvision itself (Debian's python3-torch 1.13 /
# python3-torchvision 0.14): roi_align forward (aligned true/false, sampling ratio -1 and 2, ROIs
# partly outside the image, zero-size and inverted ROIs) and its input gradient, nms with many tied
# scores, batched_nms, box_iou, BoxCoder encode/decode (RPN and ROI-head weights, incl. the dw/dh
# clamp), clip_boxes_to_image, remove_small_boxes and MultiScaleRoIAlign on a 4-level pyramid.
#
#   /usr/bin/python3 scripts/make-detection-fixtures.py   (writes test/fixtures/detection/*.json)
#
# Inputs are drawn from a fixed seed and rounded to float32 (ROI coordinates to multiples of 1/8), so
# the float64 and float32 paths see the same numbers. roi_align runs in float64 (the exact reference
# for our float64 CPU path); everything whose decisions depend on float32 rounding (nms, batched_nms,
# the level mapper) runs in float32, as a detector does.
import json
import math
import os

import torch
import torchvision
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, nms, remove_small_boxes, roi_align
from torchvision.ops import MultiScaleRoIAlign
from torchvision.models.detection._utils import BoxCoder

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'detection')
os.makedirs(OUT, exist_ok=True)
g = torch.Generator().manual_seed(20261207)


def f32(t):
    return t.to(torch.float32).to(torch.float64)


def flat(t):
    return [float(v) for v in t.reshape(-1).tolist()]


def write(name, obj):
    path = os.path.join(OUT, name)
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))
    print(f'wrote {path} ({os.path.getsize(path)} bytes)')


meta = {'torch': torch.__version__, 'torchvision': torchvision.__version__}

# ---------------------------------------------------------------- roi_align
N, C, H, W = 2, 3, 9, 11
x = f32(torch.randn(N, C, H, W, generator=g, dtype=torch.float64))
rois = torch.tensor([
    [0, 1.0, 1.0, 6.0, 5.0],        # inside
    [1, 0.5, 2.25, 10.5, 8.75],     # inside, fractional
    [0, -3.0, -2.0, 4.0, 3.0],      # partly outside (top-left)
    [1, 7.0, 5.0, 14.0, 12.5],      # partly outside (bottom-right)
    [0, 3.0, 3.0, 3.0, 3.0],        # zero size
    [1, 5.0, 6.0, 4.0, 2.0],        # inverted (x2 < x1, y2 < y1)
    [0, -20.0, -20.0, -12.0, -10.0],  # entirely outside
    [1, 0.0, 0.0, 22.0, 18.0],      # covers the whole map at scale 0.5
    [0, 2.125, 1.625, 2.875, 8.375],  # thin
], dtype=torch.float64)
cases = []
for aligned in (False, True):
    for sampling_ratio in (-1, 2):
        for scale, out_size in ((1.0, (3, 4)), (0.5, (2, 2))):
            y = roi_align(x, rois, output_size=out_size, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=aligned)
            cases.append({'aligned': aligned, 'samplingRatio': sampling_ratio, 'spatialScale': scale,
                          'outputSize': list(out_size), 'out': flat(y)})
# the input gradient of one case, for sum(roi_align(x) * w)
xg = x.clone().requires_grad_(True)
wgt = f32(torch.rand(rois.shape[0], C, 3, 4, generator=g, dtype=torch.float64))
y = roi_align(xg, rois, output_size=(3, 4), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
(y * wgt).sum().backward()
grad_case = {'aligned': True, 'samplingRatio': -1, 'spatialScale': 1.0, 'outputSize': [3, 4],
             'weights': flat(wgt), 'grad': flat(xg.grad)}
xg2 = x.clone().requires_grad_(True)
y = roi_align(xg2, rois, output_size=(2, 2), spatial_scale=0.5, sampling_ratio=2, aligned=False)
(y * wgt[:, :, :2, :2]).sum().backward()
grad_case2 = {'aligned': False, 'samplingRatio': 2, 'spatialScale': 0.5, 'outputSize': [2, 2],
              'weights': flat(wgt[:, :, :2, :2]), 'grad': flat(xg2.grad)}
write('roi-align.json', {'meta': meta, 'x': flat(x), 'xShape': [N, C, H, W], 'rois': flat(rois), 'cases': cases,
                         'gradCases': [grad_case, grad_case2]})

# ---------------------------------------------------------------- nms, batched_nms
def rand_boxes(n, size=40.0, grid=0.25):
    xy = torch.rand(n, 2, generator=g) * size - 5
    wh = torch.rand(n, 2, generator=g) * size / 2
    b = torch.cat([xy, xy + wh], 1)
    return (b / grid).round() * grid  # coarse coordinates: many exactly equal IoUs and overlaps


nms_cases = []
for n, thr in ((60, 0.5), (60, 0.3), (25, 0.7), (1, 0.5), (0, 0.5)):
    b = rand_boxes(n)
    s = (torch.rand(n, generator=g) * 5).floor() / 5  # 5 distinct values: many ties
    keep = nms(b, s, thr)
    nms_cases.append({'boxes': flat(b), 'scores': flat(s), 'threshold': thr, 'keep': keep.tolist()})
# hand-made: exact IoU 0.5 (not suppressed at 0.5: strictly above), zero-area boxes, duplicates, all ties
b = torch.tensor([[0, 0, 4, 1], [0, 0, 2, 1], [0, 0, 4, 1], [1, 1, 1, 1], [1, 1, 1, 1], [2, 0, 6, 1],
                  [0, 0, 4, 1], [-3, -3, 2, 2], [-3, -3, 2, 2.5]], dtype=torch.float32)
s = torch.tensor([0.5, 0.5, 0.5, 0.9, 0.9, 0.5, 0.2, 0.5, 0.5], dtype=torch.float32)
for thr in (0.5, 0.49, 0.0):
    nms_cases.append({'boxes': flat(b), 'scores': flat(s), 'threshold': thr, 'keep': nms(b, s, thr).tolist()})
batched = []
for n, k, thr in ((80, 4, 0.5), (40, 1, 0.4), (250, 7, 0.6)):  # 250 boxes = 1000 numbers: the coordinate trick path
    b = rand_boxes(n)
    s = (torch.rand(n, generator=g) * 8).floor() / 8
    idx = torch.randint(0, k, (n,), generator=g)
    batched.append({'boxes': flat(b), 'scores': flat(s), 'idxs': idx.tolist(), 'threshold': thr,
                    'keep': batched_nms(b, s, idx, thr).tolist()})
write('nms.json', {'meta': meta, 'nms': nms_cases, 'batched': batched})

# ---------------------------------------------------------------- box ops and the box coder
b1 = torch.cat([rand_boxes(7), torch.tensor([[3.0, 3.0, 3.0, 8.0], [1.0, 1.0, 1.0, 1.0]])])
b2 = torch.cat([rand_boxes(5), torch.tensor([[1.0, 1.0, 1.0, 1.0]])])
iou = box_iou(b1, b2)  # the zero-area pair (1,1,1,1) vs itself is 0/0 = NaN in torchvision
clip = clip_boxes_to_image(torch.cat([b1, torch.tensor([[-4.0, 50.0, 70.0, -2.0]])]), (30, 25))
small_in = torch.cat([b1, torch.tensor([[0.0, 0.0, 2.0, 5.0], [0.0, 0.0, 1.99, 5.0]])])
small = remove_small_boxes(small_in, 2.0)
coder_cases = []
for weights in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
    coder = BoxCoder(weights)
    ref = torch.tensor([[10, 12, 50, 70], [0, 0, 5, 5], [3, 4, 3.5, 40], [-10, 5, 20, 6]], dtype=torch.float32)
    prop = torch.tensor([[8, 10, 44, 66], [1, 1, 4, 3], [2, 2, 12, 22], [0, 0, 30, 30]], dtype=torch.float32)
    enc = coder.encode_single(ref, prop)
    # 2 classes of codes per box, one with a dw/dh far above log(1000/16) (clamped) and one below
    codes = torch.cat([enc, enc * 0.5], 1)
    codes[0, 2] = 9.0 * weights[2]
    codes[1, 7] = 7.0 * weights[3]
    codes[2, 6] = -6.0 * weights[2]
    dec = coder.decode(codes, [prop[:3], prop[3:]])
    coder_cases.append({'weights': list(weights), 'reference': flat(ref), 'proposals': flat(prop), 'encoded': flat(enc),
                        'codes': flat(codes), 'decoded': flat(dec), 'decodedShape': list(dec.shape)})
write('boxes.json', {'meta': meta, 'iou': {'a': flat(b1), 'b': flat(b2), 'iou': [None if math.isnan(v) else v for v in flat(iou)]},
                     'clip': {'boxes': flat(torch.cat([b1, torch.tensor([[-4.0, 50.0, 70.0, -2.0]])])), 'size': [30, 25], 'out': flat(clip)},
                     'small': {'boxes': flat(small_in), 'minSize': 2.0, 'keep': small.tolist()},
                     'coder': coder_cases, 'clip_default': math.log(1000.0 / 16)})

# ---------------------------------------------------------------- MultiScaleRoIAlign
img = (512, 768)  # (h, w) of the padded batch; strides 16..128 keep the maps small while boxes reach every level
feats = {}
for i, stride in enumerate((16, 32, 64, 128)):
    feats[f'p{i}'] = f32(torch.randn(2, 2, img[0] // stride, img[1] // stride, generator=g, dtype=torch.float64)).to(torch.float32)
pooler = MultiScaleRoIAlign(['p0', 'p1', 'p2', 'p3'], output_size=(3, 2), sampling_ratio=2)
# sqrt(area) from 1 to ~2200: below 448 -> level 4 (the first), [448, 896) -> 5, [896, 1792) -> 6, above -> 7 (clamped)
boxes = [torch.tensor([[2, 3, 10, 12], [0, 0, 600, 500], [5.5, 7.25, 700, 463], [30, 20, 31, 21], [100, 10, 740, 500],
                       [-300, -200, 1500, 1400], [10, 20, 458, 468], [10, 20, 457.5, 467.5]], dtype=torch.float32),
         torch.tensor([[1, 1, 200, 180], [-400, -400, 1700, 1600], [40, 10, 560, 458], [0, 0, 224, 224], [0, 0, 896, 896]], dtype=torch.float32)]
image_shapes = [(500, 700), (512, 760)]
out = pooler(feats, boxes, image_shapes)
scales = pooler.scales
levels = pooler.map_levels(boxes)
write('poolers.json', {'meta': meta, 'features': [flat(v) for v in feats.values()], 'featureShapes': [list(v.shape) for v in feats.values()],
                       'boxes': [flat(b) for b in boxes], 'imageShapes': [list(s) for s in image_shapes], 'outputSize': [3, 2],
                       'samplingRatio': 2, 'scales': scales, 'levels': levels.tolist(), 'out': flat(out), 'outShape': list(out.shape)})
