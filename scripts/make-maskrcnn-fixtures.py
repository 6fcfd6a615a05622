#!/usr/bin/python3
"""Fixtures for test/detection/mask-rcnn.test.ts, from Debian's torch 1.13 / torchvision 0.14.

1. state-dict.json: every key and shape of torchvision's maskrcnn_resnet50_fpn (91 classes), as
   built without pretrained weights (BatchNorm2d, so with num_batches_tracked) -- our model must have
   exactly these names and shapes.
2. parity.json: a small torchvision MaskRCNN (ResNet with BasicBlock [1,1,1,1] and FrozenBatchNorm2d,
   FPN with 32 channels and LastLevelMaxPool, TwoMLPHead 64, 5 classes, mask head 4x32) in eval mode.
   Its weights and the input image are NOT stored: every value comes from a counter hash that the
   test re-implements (hashUniform in test/detection/mask-rcnn.test.ts), so the fixture holds only
   outputs: FPN features, RPN objectness and deltas, the proposals, box-head logits and regression
   for those proposals, mask logits for fixed boxes, and the final detections.
Run: /usr/bin/python3 scripts/make-maskrcnn-fixtures.py
"""
import base64, json, math, os
from collections import OrderedDict
import numpy as np
import torch
import torchvision
from torchvision.models.resnet import ResNet, BasicBlock
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.mask_rcnn import MaskRCNN, MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.faster_rcnn import TwoMLPHead, FastRCNNPredictor

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'maskrcnn')
M32 = 0xFFFFFFFF
U = np.uint64


def mix(x):
    """murmur3's 32-bit finaliser, on uint64 numpy arrays holding uint32 values."""
    x = np.asarray(x, dtype=np.uint64) & U(M32)
    x ^= x >> U(16)
    x = (x * U(0x7FEB352D)) & U(M32)
    x ^= x >> U(15)
    x = (x * U(0x846CA68B)) & U(M32)
    x ^= x >> U(16)
    return x


def hash_uniform(key, n):
    """n values in [-1, 1), exactly representable in float32: element j of stream `key`."""
    j = np.arange(n, dtype=np.uint64)
    k = mix((U(key) * U(0x9E3779B1)) & U(M32))
    h = mix(((j * U(0x85EBCA77)) & U(M32)) + k)
    return (h >> np.uint64(8)).astype(np.float64) / float(1 << 24) * 2.0 - 1.0


def init_value(name, shape, index):
    """The value rule the test repeats: by the parameter's role, a + b·u with u from stream index + 1."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hash_uniform(index + 1, n)
    if name.endswith('running_var'):
        v = 1.0 + 0.25 * (u + 1.0)
    elif name.endswith('running_mean'):
        v = 0.1 * u
    elif ('.bn' in name or 'downsample.1' in name) and name.endswith('weight'):
        v = 1.0 + 0.1 * u
    elif name.endswith('bias'):
        v = 0.05 * u
    else:
        fan_in = int(np.prod(shape[1:]))
        # the output layers smaller, so that the random RPN proposes varied boxes and no score
        # saturates (ties would make the order, not the arithmetic, decide the comparison)
        v = (0.1 if 'bbox_pred' in name else 0.05 if ('cls_logits' in name or 'cls_score' in name) else 1.0) * math.sqrt(6.0 / fan_in) * u
    return v.astype(np.float32).reshape(shape)


def b64(t):
    a = np.ascontiguousarray(t.detach().numpy().astype(np.float32))
    return {'shape': list(a.shape), 'b64': base64.b64encode(a.tobytes()).decode()}


def small_model():
    body = ResNet(BasicBlock, [1, 1, 1, 1], norm_layer=FrozenBatchNorm2d)
    backbone = BackboneWithFPN(body, {'layer1': '0', 'layer2': '1', 'layer3': '2', 'layer4': '3'}, [64, 128, 256, 512], 32, extra_blocks=LastLevelMaxPool())
    num_classes = 5
    model = MaskRCNN(
        backbone, num_classes=None, min_size=128, max_size=160,
        box_head=TwoMLPHead(32 * 7 * 7, 64), box_predictor=FastRCNNPredictor(64, num_classes),
        mask_head=MaskRCNNHeads(32, (32, 32, 32, 32), 1), mask_predictor=MaskRCNNPredictor(32, 32, num_classes),
        box_detections_per_img=20,
        # samplers that take every positive and negative: training losses without torch.randperm
        rpn_batch_size_per_image=100000, box_batch_size_per_image=100000,
    )
    sd = model.state_dict()
    new = OrderedDict()
    for i, (k, v) in enumerate(sd.items()):
        new[k] = torch.from_numpy(init_value(k, tuple(v.shape), i))
    model.load_state_dict(new)
    return model.eval(), list(sd.keys())


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    big = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    with open(os.path.join(OUT, 'state-dict.json'), 'w') as f:
        json.dump([[k, list(v.shape)] for k, v in big.state_dict().items()], f)

    model, keys = small_model()
    H, W = 128, 160
    image = torch.from_numpy((0.5 * (hash_uniform(100000, 3 * H * W) + 1.0)).astype(np.float32).reshape(3, H, W))
    out = {'keys': keys, 'height': H, 'width': W}
    with torch.no_grad():
        images, _ = model.transform([image])
        feats = model.backbone(images.tensors)
        out['features'] = {k: b64(v) for k, v in feats.items()}
        fl = list(feats.values())
        obj, deltas = model.rpn.head(fl)
        out['objectness'] = [b64(o) for o in obj]
        out['deltas'] = [b64(d) for d in deltas]
        proposals, _ = model.rpn(images, feats)
        out['proposals'] = b64(proposals[0])
        bf = model.roi_heads.box_roi_pool(feats, proposals, images.image_sizes)
        bf = model.roi_heads.box_head(bf)
        logits, reg = model.roi_heads.box_predictor(bf)
        out['class_logits'] = b64(logits)
        out['box_regression'] = b64(reg)
        mask_boxes = torch.tensor([[10.0, 12.0, 60.0, 70.0], [0.0, 0.0, 159.0, 127.0], [30.5, 40.25, 34.0, 44.0], [80.0, 5.0, 150.0, 120.0], [100.0, 60.0, 140.0, 90.0]])
        out['mask_boxes'] = b64(mask_boxes)
        mf = model.roi_heads.mask_roi_pool(feats, [mask_boxes], images.image_sizes)
        out['mask_logits'] = b64(model.roi_heads.mask_predictor(model.roi_heads.mask_head(mf)))
        det = model([image])[0]
        out['detections'] = {
            'boxes': b64(det['boxes']), 'scores': b64(det['scores']), 'labels': det['labels'].tolist(),
            'mask_sum': det['masks'].sum(dim=(1, 2, 3)).tolist(), 'mask_area': (det['masks'] > 0.5).sum(dim=(1, 2, 3)).tolist(),
        }
        print('objectness range', min(float(o.min()) for o in obj), max(float(o.max()) for o in obj), 'class logits', float(logits.min()), float(logits.max()))
        print('proposals', proposals[0].shape, 'detections', det['boxes'].shape)
    # training losses for two annotated instances (rectangles; x2, y2 exclusive in the masks)
    boxes = torch.tensor([[10.0, 12.0, 60.0, 70.0], [80.0, 30.0, 150.0, 110.0]])
    masks = torch.zeros(2, H, W, dtype=torch.uint8)
    masks[0, 12:70, 10:60] = 1
    masks[1, 30:110, 80:150] = 1
    target = {'boxes': boxes, 'labels': torch.tensor([1, 3]), 'masks': masks}
    model.train()
    losses = model([image], [target])
    out['train'] = {'boxes': boxes.flatten().tolist(), 'labels': [1, 3], 'losses': {k: float(v) for k, v in losses.items()}}
    # gradients of the summed losses for a few parameters, one per stage
    sum(losses.values()).backward()
    named = dict(model.named_parameters())
    out['train']['grads'] = {k: b64(named[k].grad) for k in [
        'roi_heads.box_predictor.cls_score.weight', 'roi_heads.box_predictor.bbox_pred.bias', 'roi_heads.mask_predictor.mask_fcn_logits.weight',
        'roi_heads.mask_head.0.0.bias', 'roi_heads.box_head.fc7.bias', 'rpn.head.cls_logits.weight', 'rpn.head.bbox_pred.bias',
        'backbone.fpn.inner_blocks.3.0.bias', 'backbone.fpn.layer_blocks.0.0.bias', 'backbone.fpn.layer_blocks.0.0.weight', 'backbone.fpn.layer_blocks.3.0.weight',
        'backbone.fpn.inner_blocks.0.0.weight', 'backbone.fpn.inner_blocks.2.0.weight', 'backbone.body.layer2.0.downsample.0.weight', 'backbone.body.layer3.0.downsample.0.weight']}
    print('losses', out['train']['losses'])
    with open(os.path.join(OUT, 'parity.json'), 'w') as f:
        json.dump(out, f)


if __name__ == '__main__':
    main()
