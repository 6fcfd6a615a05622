#!/usr/bin/python3
"""Golden values for data/masks.ts and detection/eval/ from the official code itself: pycocotools
(its mask API, coco.py and cocoeval.py) and lvis-api (lvis.py, results.py, eval.py), both installed
as Python packages (`pip install pycocotools lvis`; they are not Debian packages). numpy>=1.24
lacks np.float, which cocoeval.py uses, so it is aliased to float.

    /usr/bin/python3 scripts/make-coco-fixtures.py [--shared DIR]

--shared: the shared data folder (default ../shared/data beside the repository). Writes
test/fixtures/coco-eval/{masks,coco-synthetic,coco-mini,lvis-sample}.json. Deterministic (seeded).
The committed fixtures were made with pycocotools at cocodataset/cocoapi 8c9bcc3 and lvis-api
7d7f07d; tests and CI never need Python.
"""
import argparse
import copy
import io
import json
import os
import random
import contextlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'coco-eval')


def load_official():
    """The official packages, installed: pycocotools (pip install pycocotools) and lvis (pip install lvis)."""
    if not hasattr(np, 'float'):
        np.float = float  # cocoeval.py's astype(np.float); removed in numpy 1.24
    import pycocotools.mask as mask
    import pycocotools.coco as coco
    import pycocotools.cocoeval as cocoeval
    import lvis.eval as lvis_eval
    import lvis.lvis as lvis_lvis
    return mask, coco, cocoeval, lvis_eval, lvis_lvis


def s(rle):
    """A compressed RLE dict as JSON (counts bytes -> str)."""
    c = rle['counts']
    return {'size': [int(x) for x in rle['size']], 'counts': c.decode() if isinstance(c, bytes) else c}



def rle_counts(mask, rle):
    m = mask.decode(rle).flatten(order='F')
    counts, p, c = [], 0, 0
    for v in m:
        if v != p:
            counts.append(c)
            c, p = 0, v
        c += 1
    counts.append(c)
    return counts


def quiet(f, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()):
        return f(*a, **k)


# ----------------------------------------------------------------------------- masks

def mask_cases(mask, rng):
    polys = []
    fixed = [
        (5, 5, [[1, 1, 3, 1, 3, 3, 1, 3]]),  # a box polygon on integer corners
        (6, 7, [[0.5, 0.5, 4.5, 0.5, 0.5, 4.5]]),  # a triangle
        (8, 8, [[-2, -2, 10, -2, 10, 10, -2, 10]]),  # covers the image and beyond
        (6, 6, [[0, 0, 5, 5, 0, 5, 5, 0]]),  # self-intersecting bow tie
        (6, 6, [[1, 1, 2, 2, 3, 3]]),  # collinear: no area
        (9, 9, [[0, 0, 3, 0, 3, 3, 0, 3], [5, 5, 8, 5, 8, 8, 5, 8]]),  # two parts, merged
        (9, 9, [[0, 0, 5, 0, 5, 5, 0, 5], [3, 3, 8, 3, 8, 8, 3, 8]]),  # overlapping parts
        (4, 10, [[0.2, 0.3, 9.7, 0.1, 9.9, 3.6, 0.1, 3.8]]),
        (10, 4, [[1.25, -0.75, 2.75, 4.25, 3.9, 10.6, 0.4, 9.1]]),
    ]
    for h, w, p in fixed:
        polys.append((h, w, p))
    for _ in range(40):
        h, w = rng.randint(1, 24), rng.randint(1, 24)
        parts = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            k = rng.randint(3, 9)
            scale = rng.choice([1, 2, 4, 10])
            parts.append([round(rng.uniform(-3, (w if i % 2 == 0 else h) + 3) * scale) / scale for i in range(2 * k)])
        polys.append((h, w, parts))
    cases = []
    for h, w, p in polys:
        rle = mask.merge(mask.frPyObjects(p, h, w))
        cases.append({'h': h, 'w': w, 'polygons': p, 'counts': rle_counts(mask, rle), 'string': s(rle)['counts'],
                      'area': int(mask.area(rle)), 'bbox': [float(x) for x in mask.toBbox(rle)]})
    boxes = []
    for bb, h, w in [([1, 1, 2, 2], 5, 5), ([0.5, 0.5, 3, 2], 6, 6), ([-1, -1, 4.3, 7.7], 6, 5), ([2.2, 1.7, 0, 3], 6, 6)]:
        boxes.append((bb, h, w))
    for _ in range(20):
        h, w = rng.randint(1, 20), rng.randint(1, 20)
        boxes.append(([round(rng.uniform(-2, w), 2), round(rng.uniform(-2, h), 2), round(rng.uniform(0, w), 2), round(rng.uniform(0, h), 2)], h, w))
    box_cases = []
    for bb, h, w in boxes:
        rle = mask.frPyObjects([bb], h, w)[0]
        box_cases.append({'h': h, 'w': w, 'bbox': bb, 'counts': rle_counts(mask, rle), 'string': s(rle)['counts']})
    # random masks: strings, boxes (column-crossing runs included), areas; and IoU with crowd flags
    random_masks = []
    for i in range(30):
        h, w = rng.randint(1, 40), rng.randint(1, 40)
        density = rng.choice([0.05, 0.3, 0.5, 0.9, 1.0, 0.0])
        m = (np.array([rng.random() for _ in range(h * w)]).reshape(h, w) < density).astype(np.uint8)
        if i % 3 == 0:  # blocky masks: long runs, large count deltas
            m = np.zeros((h, w), np.uint8)
            y0, x0 = rng.randint(0, h - 1), rng.randint(0, w - 1)
            m[y0:rng.randint(y0, h) + 1, x0:rng.randint(x0, w) + 1] = 1
        rle = mask.encode(m)
        random_masks.append({'h': h, 'w': w, 'counts': rle_counts(mask, rle), 'string': s(rle)['counts'], 'area': int(mask.area(rle)), 'bbox': [float(x) for x in mask.toBbox(rle)]})
    big = []
    for counts in [[0, 100000, 5, 1, 2**20, 3, 70000, 0], [7, 2**25, 1, 2**25]]:
        hh = 1
        ww = sum(counts)
        r = mask.frPyObjects({'size': [hh, ww], 'counts': counts}, hh, ww)
        big.append({'h': hh, 'w': ww, 'counts': counts, 'string': s(r)['counts']})
    iou_cases = []
    for _ in range(12):
        h, w = rng.randint(4, 16), rng.randint(4, 16)

        def rand_poly():
            k = rng.randint(3, 6)
            return [[round(rng.uniform(-1, (w if i % 2 == 0 else h) + 1), 1) for i in range(2 * k)]]
        dts = [mask.merge(mask.frPyObjects(rand_poly(), h, w)) for _ in range(rng.randint(1, 4))]
        gts = [mask.merge(mask.frPyObjects(rand_poly(), h, w)) for _ in range(rng.randint(1, 4))]
        crowd = [rng.random() < 0.4 for _ in gts]
        o = mask.iou(dts, gts, crowd)
        dbox = [[round(rng.uniform(-2, w), 1), round(rng.uniform(-2, h), 1), round(rng.uniform(0, w), 1), round(rng.uniform(0, h), 1)] for _ in range(3)]
        gbox = [[round(rng.uniform(-2, w), 1), round(rng.uniform(-2, h), 1), round(rng.uniform(0, w), 1), round(rng.uniform(0, h), 1)] for _ in range(2)]
        bcrowd = [True, False]
        ob = mask.iou(dbox, gbox, bcrowd)
        iou_cases.append({'h': h, 'w': w, 'dt': [s(r)['counts'] for r in dts], 'gt': [s(r)['counts'] for r in gts], 'crowd': crowd,
                          'iou': [[float(x) for x in row] for row in np.asarray(o)],
                          'dtBoxes': dbox, 'gtBoxes': gbox, 'boxCrowd': bcrowd, 'boxIou': [[float(x) for x in row] for row in np.asarray(ob)]})
    return {'polygons': cases, 'boxes': box_cases, 'masks': random_masks, 'large': big, 'iou': iou_cases}


# ----------------------------------------------------------------------------- COCO evaluation

def coco_numbers(coco, cocoeval, gt_dict, dts, iou_type):
    gt = coco.COCO()
    gt.dataset = copy.deepcopy(gt_dict)
    quiet(gt.createIndex)
    dt = quiet(gt.loadRes, copy.deepcopy(dts))
    E = cocoeval.COCOeval(gt, dt, iou_type)
    quiet(E.evaluate)
    quiet(E.accumulate)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        E.summarize()
    p = E.eval['precision']
    per_cat = []
    for k, cid in enumerate(E.params.catIds):
        v = p[:, :, k, 0, -1]
        v = v[v > -1]
        per_cat.append({'id': int(cid), 'ap': float(np.mean(v)) if v.size else -1.0})
    return {'stats': [float(x) for x in E.stats], 'text': out.getvalue(), 'perCategory': per_cat}


def jitter_poly(poly, dx, dy, sc, cx, cy, rng, noise, digits, stride=1):
    out = []
    for i in range(0, len(poly), 2 * (stride if len(poly) > 16 * stride else 1)):
        x = cx + (poly[i] - cx) * sc + dx + rng.uniform(-noise, noise)
        y = cy + (poly[i + 1] - cy) * sc + dy + rng.uniform(-noise, noise)
        out += [round(x, digits), round(y, digits)] if digits else [round(x), round(y)]
    return out


def perturbed_detections(gt, rng, keep=0.9, fps_per_image=2, with_segm=True, score_digits=2, poly_digits=1, stride=1):
    """Jittered copies of the non-crowd gts (shifted, scaled, noisy polygons), some dropped, some
    duplicated, plus false positives of random categories; scores rounded to force ties."""
    dts = []
    cats = [c['id'] for c in gt['categories']]
    imgs = {im['id']: im for im in gt['images']}
    for a in gt['annotations']:
        if a.get('iscrowd', 0) or rng.random() > keep:
            continue
        x, y, w, h = a['bbox']
        cx, cy = x + w / 2, y + h / 2
        for dup in range(2 if rng.random() < 0.1 else 1):
            q = rng.random()
            sc = 1 + (rng.uniform(-0.3, 0.3) if q < 0.5 else rng.uniform(-0.08, 0.08))
            dx, dy = rng.uniform(-0.15, 0.15) * w, rng.uniform(-0.15, 0.15) * h
            bb = [round(cx - w * sc / 2 + dx, 2), round(cy - h * sc / 2 + dy, 2), round(w * sc, 2), round(h * sc, 2)]
            d = {'image_id': a['image_id'], 'category_id': a['category_id'], 'bbox': bb, 'score': round(rng.random(), score_digits)}
            if with_segm and isinstance(a.get('segmentation'), list):
                d['segmentation'] = [jitter_poly(p, dx, dy, sc, cx, cy, rng, 0.02 * max(w, h), poly_digits, stride) for p in a['segmentation']]
            dts.append(d)
    for im in gt['images']:
        for _ in range(fps_per_image):
            W, H = im['width'], im['height']
            w, h = rng.uniform(4, W / 2), rng.uniform(4, H / 2)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            bb = [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]
            d = {'image_id': im['id'], 'category_id': rng.choice(cats), 'bbox': bb, 'score': round(rng.random(), score_digits)}
            if with_segm:
                d['segmentation'] = [[bb[0], bb[1], bb[0] + bb[2], bb[1], bb[0] + bb[2], bb[1] + bb[3], bb[0], bb[1] + bb[3]]]
            dts.append(d)
    rng.shuffle(dts)
    return dts


def synthetic_coco(mask, rng):
    """A small COCO set: 5 images, 4 categories, small/medium/large objects, a crowd region (RLE),
    a category with no gt, and detections with compressed-RLE masks."""
    images = [{'id': i + 1, 'width': W, 'height': H, 'file_name': f'{i + 1}.jpg'} for i, (W, H) in enumerate([(120, 90), (200, 160), (64, 48), (150, 150), (80, 100)])]
    cats = [{'id': c, 'name': n, 'supercategory': 'x'} for c, n in [(1, 'a'), (2, 'b'), (3, 'c'), (7, 'nogt')]]
    anns = []
    for im in images:
        for _ in range(rng.randint(2, 6)):
            W, H = im['width'], im['height']
            size = rng.choice([6, 14, 30, 50, 90, 140])
            w, h = min(W - 1, size * rng.uniform(0.6, 1.4)), min(H - 1, size * rng.uniform(0.6, 1.4))
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            k = rng.randint(3, 7)
            poly = []
            for j in range(k):
                t = 2 * np.pi * j / k + rng.uniform(-0.3, 0.3)
                poly += [round(x + w / 2 + w / 2 * np.cos(t) * rng.uniform(0.7, 1), 1), round(y + h / 2 + h / 2 * np.sin(t) * rng.uniform(0.7, 1), 1)]
            rle = mask.merge(mask.frPyObjects([poly], H, W))
            bb = [float(v) for v in mask.toBbox(rle)]
            anns.append({'id': len(anns) + 1, 'image_id': im['id'], 'category_id': rng.choice([1, 2, 3]), 'segmentation': [poly], 'area': float(mask.area(rle)), 'bbox': bb, 'iscrowd': 0})
    # a crowd region in image 2 (uncompressed RLE, as COCO's crowd annotations)
    H, W = 160, 200
    m = np.zeros((H, W), np.uint8)
    m[20:90, 100:190] = 1
    rle = mask.encode(m)
    anns.append({'id': len(anns) + 1, 'image_id': 2, 'category_id': 1, 'segmentation': {'size': [H, W], 'counts': rle_counts(mask, rle)}, 'area': float(mask.area(rle)), 'bbox': [100.0, 20.0, 90.0, 70.0], 'iscrowd': 1})
    gt = {'images': images, 'categories': cats, 'annotations': anns}
    dts = perturbed_detections(gt, rng, keep=0.85, fps_per_image=3, score_digits=1)
    # detections inside the crowd region, and one of category 'nogt'
    for j in range(3):
        dts.append({'image_id': 2, 'category_id': 1, 'bbox': [110.0 + 20 * j, 30.0, 18.0, 25.0], 'score': 0.55})
    dts.append({'image_id': 3, 'category_id': 7, 'bbox': [1.0, 1.0, 10.0, 10.0], 'score': 0.99})
    # over COCO's 100 detections per image and category: 120 small boxes of category 2 on image 4
    for j in range(120):
        dts.append({'image_id': 4, 'category_id': 2, 'bbox': [float(j % 12) * 12, float(j // 12) * 14, 9.0, 11.0], 'score': round(rng.random(), 1)})
    # segm results as compressed RLE (box-only results get their box polygon, as loadRes)
    imgs = {im['id']: im for im in images}
    for d in dts:
        im = imgs[d['image_id']]
        if 'segmentation' in d:
            d['segmentation'] = s(mask.merge(mask.frPyObjects(d['segmentation'], im['height'], im['width'])))
    return gt, dts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--shared', default=os.path.join(os.path.dirname(ROOT), 'shared', 'data'))
    args = ap.parse_args()
    mask, coco, cocoeval, lvis_eval, _ = load_official()
    os.makedirs(OUT, exist_ok=True)

    def write(name, obj):
        path = os.path.join(OUT, name)
        with open(path, 'w') as f:
            json.dump(obj, f, separators=(',', ':'))
        print(f'{path}: {os.path.getsize(path)} bytes')

    rng = random.Random(12)
    write('masks.json', mask_cases(mask, rng))

    gt, dts = synthetic_coco(mask, random.Random(5))
    # the same results without boxes: loadRes's mask branch (areas and boxes from the masks)
    mask_only = [{k: v for k, v in d.items() if k != 'bbox'} for d in dts if 'segmentation' in d]
    write('coco-synthetic.json', {'gt': gt, 'dt': dts, 'bbox': coco_numbers(coco, cocoeval, gt, dts, 'bbox'), 'segm': coco_numbers(coco, cocoeval, gt, dts, 'segm'),
                                  'maskOnly': {'dt': mask_only, 'bbox': coco_numbers(coco, cocoeval, gt, mask_only, 'bbox'), 'segm': coco_numbers(coco, cocoeval, gt, mask_only, 'segm')}})

    with open(os.path.join(args.shared, 'coco_mini', 'annotations', 'instances_val2017.json')) as f:
        mini = json.load(f)
    dts = perturbed_detections(mini, random.Random(7), score_digits=2)
    write('coco-mini.json', {'gt': 'coco_mini/annotations/instances_val2017.json', 'dt': dts,
                             'bbox': coco_numbers(coco, cocoeval, mini, dts, 'bbox'), 'segm': coco_numbers(coco, cocoeval, mini, dts, 'segm')})

    lvis_path = os.path.join(args.shared, 'lvis', 'lvis_v0.5_val_100.json')
    with open(lvis_path) as f:
        lv = json.load(f)
    lrng = random.Random(9)
    dts = perturbed_detections(lv, lrng, keep=0.85, fps_per_image=1, score_digits=2, poly_digits=0, stride=2)
    cat_ids = [c['id'] for c in lv['categories']]
    for im in lv['images']:
        W, H = im['width'], im['height']
        def box():
            w, h = lrng.uniform(4, W / 3), lrng.uniform(4, H / 3)
            return [round(lrng.uniform(0, W - w), 2), round(lrng.uniform(0, H - h), 2), round(w, 2), round(h, 2)]
        # negatives (false positives that count), unverified categories (dropped), not-exhaustive ones (ignored when unmatched)
        for c in im['neg_category_ids'][:3]:
            dts.append({'image_id': im['id'], 'category_id': c, 'bbox': box(), 'score': round(lrng.random(), 2)})
        for _ in range(3):
            dts.append({'image_id': im['id'], 'category_id': lrng.choice(cat_ids), 'bbox': box(), 'score': round(lrng.random(), 2)})
        for c in im['not_exhaustive_category_ids']:
            dts.append({'image_id': im['id'], 'category_id': c, 'bbox': box(), 'score': round(lrng.random(), 2)})
    # one image over the 300-per-image limit: tiny low-scoring boxes of its negative categories
    im = lv['images'][0]
    negs = im['neg_category_ids'] or cat_ids
    for j in range(320):
        dts.append({'image_id': im['id'], 'category_id': negs[j % len(negs)], 'bbox': [float(j % 50), float(j // 50), 5.0, 5.0], 'score': round(lrng.random() * 0.5, 2)})
    for d in dts:  # box-only results get their box polygon as mask (loadRes); write it explicitly for segm
        if 'segmentation' not in d:
            x, y, w, h = d['bbox']
            d['segmentation'] = [[x, y, x, y + h, x + w, y + h, x + w, y]]

    def lvis_numbers(iou_type):
        E = lvis_eval.LVISEval(lvis_path, copy.deepcopy(dts), iou_type)
        E.run()
        p = E.eval['precision']
        per_cat = []
        for k, cid in enumerate(E.params.cat_ids):
            v = p[:, :, k, 0]
            v = v[v > -1]
            if v.size:
                per_cat.append({'id': int(cid), 'ap': float(np.mean(v))})
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            E.print_results()
        return {'results': {k: float(v) for k, v in E.results.items()}, 'text': out.getvalue(), 'perCategory': per_cat}
    import logging
    logging.disable(logging.WARNING)
    write('lvis-sample.json', {'gt': 'lvis/lvis_v0.5_val_100.json', 'dt': dts, 'bbox': lvis_numbers('bbox'), 'segm': lvis_numbers('segm')})


if __name__ == '__main__':
    main()
