#!/usr/bin/python3
"""Fixtures for test/detection/longtail.test.ts: the detection long-tail losses and heads computed in
torch the way their official code writes them (each block names its source), on small random inputs.

Conventions of the official codes, mapped to ours (torchvision: background = column/label 0):
- eql.detectron2 / cvpods (detectron2): background last; logits[:, :C] foreground.
- BalancedGroupSoftmax (mmdet v1): background first, as ours.

Run: /usr/bin/python3 scripts/make-detection-longtail-fixtures.py  (writes test/fixtures/detection-longtail/longtail.json)
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
out = {}

# ---- EQL (tztztztztz/eql.detectron2 projects/EQL/eql/fast_rcnn.py, EQLFastRCNNOutputs.eql_loss) ----
N, C = 7, 5
ours_z = torch.randn(N, C + 1) * 2
ours_labels = torch.tensor([0, 1, 3, 0, 5, 2, 4])
freq = torch.tensor([0.3, 0.0005, 0.01, 0.001, 0.0017])
lam = 0.00177
pred = ours_z[:, 1:]  # their cls_score has only the C foreground outputs
gt = torch.where(ours_labels == 0, torch.tensor(C), ours_labels - 1)  # theirs: background = C
n_i, n_c = pred.size()
target = pred.new_zeros(n_i, n_c + 1)
target[torch.arange(n_i), gt] = 1
target = target[:, :n_c]
exclude = (gt != n_c).double().view(n_i, 1).expand(n_i, n_c)
thr = pred.new_zeros(n_c)
thr[freq < lam] = 1
thr = thr.view(1, n_c).expand(n_i, n_c)
eql_w = 1 - exclude * thr * (1 - target)
eql = torch.sum(F.binary_cross_entropy_with_logits(pred, target, reduction='none') * eql_w) / n_i
out['eql'] = dict(z=ours_z.flatten().tolist(), labels=ours_labels.tolist(), freq=freq.tolist(), lam=lam, loss=eql.item())

# ---- sigmoid focal loss (torchvision.ops.sigmoid_focal_loss, as fvcore), normalised by #foreground ----
tgt = torch.zeros(N, C)
fg = ours_labels > 0
tgt[fg, ours_labels[fg] - 1] = 1
focal = sigmoid_focal_loss(ours_z[:, 1:], tgt, alpha=0.25, gamma=2, reduction='sum') / max(int(fg.sum()), 1)
out['focal'] = dict(loss=focal.item())

# ---- BAGS (FishYuLi/BalancedGroupSoftmax: tools/lvis_analyse.py get_cate_gs, GSBBoxHeadWith0) ----
counts = [3, 50, 2000, 9, 120]  # instance counts of classes 1..5
binlabel_count = [1, 1, 1, 1, 1]
label2binlabel = np.zeros((5, C + 1), dtype=np.int64)
label2binlabel[0, 1:] = binlabel_count[0]
binlabel_count[0] += 1
for cid, ins in enumerate(counts, start=1):
    b = 1 if ins < 10 else 2 if ins < 100 else 3 if ins < 1000 else 4
    label2binlabel[b, cid] = binlabel_count[b]
    binlabel_count[b] += 1
pred_slice = np.zeros((5, 2), dtype=np.int64)
start = 0
for i, bl in enumerate(binlabel_count):
    pred_slice[i] = [start, bl]
    start += bl
raw = torch.randn(N, start) * 2
l2b = torch.from_numpy(label2binlabel)
# loss with every "others" kept (others_sample_ratio large: weight = ones, as _sample_others when bg_sample_num >= bg_num)
loss = 0.0
for i in range(5):
    new_label = l2b[i][ours_labels]
    sl = raw.narrow(1, int(pred_slice[i, 0]), int(pred_slice[i, 1]))
    if i < 1:
        w = torch.ones_like(new_label)
    else:
        fgi = (new_label > 0)
        w = torch.zeros_like(new_label) if fgi.sum() == 0 else torch.ones_like(new_label)
    avg = max(float(w.sum()), 1.0)
    loss = loss + (F.cross_entropy(sl, new_label, reduction='none') * w).sum() / avg
# _merge_score
fg_splits = [np.array([k for k in range(1, C + 1) if label2binlabel[b, k] > 0]) for b in range(1, 5)]
scores = [F.softmax(raw.narrow(1, int(pred_slice[i, 0]), int(pred_slice[i, 1])), dim=1) for i in range(5)]
fg_merge = torch.zeros(N, C + 1)
merge = torch.zeros(N, C + 1)
for i, split in enumerate(fg_splits):
    if len(split):
        fg_merge[:, torch.from_numpy(split)] = scores[i + 1][:, 1:]
weight = scores[0].narrow(1, 1, 1)
fg_merge = weight * fg_merge
merge[:, 0] = scores[0][:, 0]
merge[:, 1:] = fg_merge[:, 1:]
out['bags'] = dict(counts=counts, label2binlabel=label2binlabel.tolist(), pred_slice=pred_slice.tolist(), raw=raw.flatten().tolist(),
                   labels=ours_labels.tolist(), loss=float(loss), scores=merge.flatten().tolist())

# ---- DisAlign (cvpods DisAlignFastRCNNOutputLayers.forward; DisAlign LVIS GRWFastRCNNOutputs) ----
D = 4
x = torch.randn(N, D)
v = torch.randn(1, D) * 0.5
b = torch.randn(1) * 0.5
alpha = 1 + torch.randn(C) * 0.3
beta = torch.randn(C) * 0.3
theirs = torch.cat([ours_z[:, 1:], ours_z[:, :1]], 1)  # background last
confidence = torch.sigmoid(x @ v.t() + b)
tmp = confidence * (theirs[:, :-1] * alpha + beta) + (1 - confidence) * theirs[:, :-1]
aligned = torch.cat([tmp, theirs[:, -1].view(-1, 1)], 1)
ours_aligned = torch.cat([aligned[:, -1:], aligned[:, :-1]], 1)
shots = np.array(counts, dtype=np.float64)
ratio = shots / shots.sum()
rw = 1 / ratio ** 0.8
rw = rw / rw.sum() * C
final = torch.ones(C + 1)
final[:-1] = torch.tensor(rw)
grw = F.cross_entropy(aligned, gt, weight=final, reduction='mean')
out['disalign'] = dict(x=x.flatten().tolist(), v=v.flatten().tolist(), b=b.tolist(), alpha=alpha.tolist(), beta=beta.tolist(),
                       logits=ours_aligned.flatten().tolist(), grw_weights=[1.0] + rw.tolist(), grw_loss=grw.item())

path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'detection-longtail', 'longtail.json')
with open(path, 'w') as f:
    json.dump(dict(N=N, C=C, D=D, **out), f)
print('wrote', os.path.normpath(path))
