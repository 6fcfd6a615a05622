#!/usr/bin/python3
"""Fixture for test/tasks/ddp-weights.test.ts: a resnet8 state dict written by scripts/ddp_stage1.py's
own safetensors writer (as a DDP stage 1 would leave it: weights and BN running statistics moved,
num_batches_tracked I64), and torch's eval-mode pooled features and logits of two fixed inputs.

    /usr/bin/python3 scripts/make-ddp-fixtures.py   # writes test/fixtures/ddp/
"""
import importlib.util
import json
import os

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('ddp_stage1', os.path.join(here, 'ddp_stage1.py'))
ddp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ddp)

out = os.path.join(here, '..', 'test', 'fixtures', 'ddp')
os.makedirs(out, exist_ok=True)
torch.manual_seed(3)
model = ddp.CifarResNet(1, 5)
# training-like state: BN affine and running statistics away from their initial values
for name, t in model.state_dict().items():
    if name.endswith('num_batches_tracked'):
        t.fill_(7)
    elif name.endswith('running_var'):
        t.copy_(0.5 + torch.rand_like(t))
    elif name.endswith('running_mean') or (('bn' in name) and name.endswith('bias')):
        t.copy_(0.2 * torch.randn_like(t))
    elif 'bn' in name and name.endswith('weight'):
        t.copy_(0.8 + 0.4 * torch.rand_like(t))
model.eval()
x = torch.randn(2, 3, 8, 8)
with torch.no_grad():
    out_map = F.relu(model.bn1(model.conv1(x)))
    out_map = model.layer3(model.layer2(model.layer1(out_map)))
    features = F.adaptive_avg_pool2d(out_map, 1).flatten(1)
    logits = model.linear(features)
ddp.save_safetensors(os.path.join(out, 'resnet8.safetensors'), model.state_dict(), {'format': 'pt', 'model': 'resnet8'})
with open(os.path.join(out, 'resnet8.json'), 'w') as f:
    json.dump({'torch': torch.__version__, 'input_shape': list(x.shape), 'input': x.flatten().tolist(),
               'features': features.flatten().tolist(), 'logits': logits.flatten().tolist()}, f)
print('wrote', out)
