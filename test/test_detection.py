"""Detector outputs to camera boxes, and COCO AP against pycocotools on the same frames."""

import contextlib
import io
import json
import sys
import types

import numpy as np
import pytest

from conftest import ROOT
from tts_perception.common.detection_metrics import (average_precision, FrameBoxes,
                                                     iou_matrix)
from tts_perception.inference.detection import (decode_boxes, decode_ssd, decode_yolo,
                                                DetectionError, Detections, load_decoder, nms,
                                                postprocess, Resize, SsdAnchors)

pytestmark = pytest.mark.unit


def _scene(rng, n_frames=25, classes=3):
    """Random reference boxes, and detections: jittered copies (some missed, some in the
    wrong place) plus false positives, with scores."""
    refs, dets = [], []
    for _ in range(n_frames):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 500, (n, 2))
        wh = rng.uniform(5, 120, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        cls = rng.integers(0, classes, n)
        refs.append(FrameBoxes(boxes, cls))
        keep = rng.random(n) > 0.2
        jitter = rng.normal(0, 6, (n, 4)) * (1 + 3 * (rng.random((n, 1)) < 0.2))
        db = (boxes + jitter)[keep]
        dc = cls[keep]
        fp = int(rng.integers(0, 4))
        fxy = rng.uniform(0, 500, (fp, 2))
        db = np.concatenate([db, np.concatenate([fxy, fxy + rng.uniform(5, 80, (fp, 2))], 1)])
        dc = np.concatenate([dc, rng.integers(0, classes, fp)])
        db = np.maximum(db, 0)
        db = np.concatenate([np.minimum(db[:, :2], db[:, 2:]),          # a valid box: x1 < x2
                             np.maximum(db[:, :2], db[:, 2:]) + 1], 1)
        dets.append(FrameBoxes(db, dc, rng.random(len(dc))))
    return dets, refs


def _coco(dets, refs, classes):
    """AP50 and mAP by pycocotools' COCOeval on the same frames."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
    anns, aid = [], 1
    for i, r in enumerate(refs):
        for b, c in zip(r.boxes, r.classes):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({'id': aid, 'image_id': i, 'category_id': int(c), 'bbox': xywh(b),
                         'area': float(w * h), 'iscrowd': 0})
            aid += 1
    gt = COCO()
    gt.dataset = {'info': {}, 'images': [{'id': i} for i in range(len(refs))],
                  'annotations': anns,
                  'categories': [{'id': c} for c in range(classes)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        res = gt.loadRes([{'image_id': i, 'category_id': int(c), 'bbox': xywh(b),
                           'score': float(s)} for i, d in enumerate(dets)
                          for b, c, s in zip(d.boxes, d.classes, d.scores)])
        ev = COCOeval(gt, res, 'bbox')
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ['all']
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval['precision'][:, :, :, 0, -1]        # [T, R, K], area all, 100 dets
    per = [prec[:, :, k] for k in range(classes)]
    have = [p for p in per if (p > -1).any()]
    return float(np.mean([p[0].mean() for p in have])), float(np.mean([p.mean() for p in have]))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_ap_matches_pycocotools_on_random_frames(seed):
    rng = np.random.default_rng(seed)
    dets, refs = _scene(rng)
    ours = average_precision(dets, refs, 3)
    ap50, ap = _coco(dets, refs, 3)
    assert 0.0 < ours.ap50 < 1.0 and 0.0 < ours.map < ours.ap50
    assert ours.ap50 == pytest.approx(ap50, abs=1e-9)
    assert ours.map == pytest.approx(ap, abs=1e-9)


def test_ap_of_perfect_empty_and_missing_detections():
    ref = FrameBoxes([[0, 0, 10, 10], [20, 20, 40, 40]], [0, 1])
    perfect = FrameBoxes(ref.boxes, ref.classes, [0.9, 0.8])
    r = average_precision([perfect], [ref], 3)
    assert r.ap50 == r.map == 1.0 and r.per_class_ap50[2] is None     # class 2: no reference
    assert r.per_class_recall == [1.0, 1.0, None]
    none = FrameBoxes(np.zeros((0, 4)), [], [])
    assert average_precision([none], [ref], 3).ap50 == 0.0
    # a class the detector never finds: its recall is 0, whatever the others score
    only0 = FrameBoxes(ref.boxes[:1], [0], [0.9])
    assert average_precision([only0], [ref], 2).per_class_recall == [1.0, 0.0]
    assert iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10]])[0, 0] == pytest.approx(50 / 150)


def test_yolo_outputs_either_way_round_decode_to_the_same_boxes():
    out = np.zeros((1, 4 + 2, 3), np.float32)
    out[0, :, 0] = [50, 40, 20, 10, 0.1, 0.8]       # cx, cy, w, h, class scores
    out[0, :, 1] = [10, 10, 4, 4, 0.6, 0.2]
    a, b = decode_yolo(out, 2), decode_yolo(out.transpose(0, 2, 1), 2)
    np.testing.assert_allclose(a.boxes, b.boxes)
    np.testing.assert_allclose(a.boxes[0], [40, 35, 60, 45])
    assert list(a.classes[:2]) == [1, 0] and a.scores[0] == pytest.approx(0.8)
    obj = np.concatenate([out[:, :4], np.full((1, 1, 3), 0.5, np.float32), out[:, 4:]], 1)
    assert decode_yolo(obj, 2, objectness=True).scores[0] == pytest.approx(0.4)
    with pytest.raises(DetectionError, match=r'axis of 7 .*got shape \[1, 6, 3\]'):
        decode_yolo(out, 3)


def test_nms_keeps_the_best_box_per_class_and_overlapping_boxes_of_other_classes():
    d = Detections([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]],
                   [0.9, 0.8, 0.7, 0.3], [0, 0, 1, 0])
    kept = nms(d, 0.25, 0.5, 100)
    assert list(kept.scores) == pytest.approx([0.9, 0.7, 0.3]) and list(kept.classes) == \
        [0, 1, 0]
    assert len(nms(d, 0.5, 0.5, 100)) == 2 and len(nms(d, 0.25, 0.5, 1)) == 1


def test_boxes_map_back_to_camera_pixels_letterboxed_or_stretched():
    box = [[160, 120, 480, 360]]                      # the middle of a 640x480 frame
    lb = Resize((640, 480), (320, 320), 'letterbox')  # scale 0.5, 40 px bars above and below
    np.testing.assert_allclose(lb.to_camera([[80, 100, 240, 220]]), box)
    st = Resize((640, 480), (320, 320), 'stretch')
    np.testing.assert_allclose(st.to_camera([[80, 80, 240, 240]]), box)
    raw = Detections([[80, 100, 240, 220]], [0.9], [1])
    out = postprocess(raw, lb, class_names=['a', 'b'])
    np.testing.assert_allclose(out.boxes, box)
    with pytest.raises(DetectionError, match='class id 1 but the model lists 1'):
        postprocess(raw, lb, class_names=['a'])


def test_decoded_outputs_normalized_or_with_per_class_scores():
    d = decode_boxes([[0.25, 0.5, 0.5, 1.0]], [[0.1, 0.7]], box_format='yxyx',
                     normalized=True, input_wh=(200, 100))
    np.testing.assert_allclose(d.boxes, [[100, 25, 200, 50]])
    assert list(d.classes) == [1] and d.scores[0] == pytest.approx(0.7)
    with pytest.raises(DetectionError, match='scores must be'):
        decode_boxes([[0, 0, 1, 1]], [0.5])


def test_a_users_decoder_is_loaded_by_name(monkeypatch):
    mod = types.ModuleType('my_decoders')
    mod.decode = lambda out: Detections.empty()
    monkeypatch.setitem(sys.modules, 'my_decoders', mod)
    assert len(load_decoder('my_decoders:decode')(None)) == 0
    with pytest.raises(DetectionError, match='module:function'):
        load_decoder('my_decoders.decode')
    with pytest.raises(DetectionError, match='my_decoders:nothing'):
        load_decoder('my_decoders:nothing')


def test_the_detection_bench_runs_ci_sized(tmp_path):
    sys.path.insert(0, str(ROOT / 'bench'))
    from bench_detection import main
    out = tmp_path / 'detection.json'
    assert main(['--runs', '20', '--no-record', '--out', str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r['cells'], r['candidates']) for r in rows] == [(300, 300), (8400, 300)]
    for res in rows:
        assert res['runs'] == 20 and 0 < res['kept'] <= 100
        assert 0.0 < res['p50'] <= res['p95'] <= res['p99']


def test_cells_below_the_threshold_change_nothing_nms_keeps():
    """A real head is mostly background, and postprocess drops it before OpenCV's NMS sees
    the boxes: it keeps exactly what OpenCV's batched NMS keeps of the whole head, in score
    order."""
    import cv2
    sys.path.insert(0, str(ROOT / 'bench'))
    from bench_detection import candidates
    raw = decode_yolo(candidates(300, 80, 8400), 80)
    xywh = np.concatenate([raw.boxes[:, :2], raw.boxes[:, 2:] - raw.boxes[:, :2]], 1)
    same = Resize((640, 640), (640, 640), 'stretch')          # camera pixels = input pixels
    for thr in (0.1, 0.25, 0.5):
        whole = np.asarray(cv2.dnn.NMSBoxesBatched(
            xywh.astype(np.float64).tolist(), raw.scores.tolist(),
            raw.classes.astype(np.int32).tolist(), thr, 0.45), np.int64).reshape(-1)
        whole = whole[np.argsort(-raw.scores[whole], kind='stable')][:100]
        kept = postprocess(raw, same, thr, 0.45, 100)
        assert len(kept) > 0 and np.array_equal(kept.boxes, same.to_camera(raw.boxes[whole]))
        assert np.array_equal(kept.scores, raw.scores[whole])


def test_ssd_anchors_as_mediapipe_generates_them():
    # BlazeFace (front, 128x128) and MediaPipe's pose detector (224x224): their anchor counts
    face = SsdAnchors((128, 128), (8, 16, 16, 16)).anchors()
    assert len(SsdAnchors((224, 224), (8, 16, 32, 32, 32)).anchors()) == 2254
    assert face.shape == (896, 4)
    # the first grid cell of the 16x16 layer: two anchors, centred in the cell, 1 x 1
    np.testing.assert_allclose(face[:2], [[0.5 / 16, 0.5 / 16, 1, 1]] * 2)
    sized = SsdAnchors((64, 64), (32,), min_scale=0.2, max_scale=0.6,
                       fixed_size=False).anchors()
    # one layer: scale (0.2 + 0.6) / 2, then the interpolated one between it and 1
    np.testing.assert_allclose(sized[:2, 2:], [[0.4, 0.4], [np.sqrt(0.4), np.sqrt(0.4)]],
                               rtol=1e-6)


def test_ssd_offsets_decode_to_boxes_around_their_anchors():
    anchors = SsdAnchors((128, 128), (8, 16, 16, 16)).anchors()
    raw = np.zeros((len(anchors), 16), np.float32)     # 4 box values + 6 keypoints x, y
    scores = np.full(len(anchors), -10.0, np.float32)
    raw[100, :4] = [12.8, -6.4, 32.0, 16.0]          # scales 128: +0.1, -0.05, 0.25 x 0.125
    scores[100] = 3.0
    d = decode_ssd(raw[None], scores[None, :, None], anchors, (128, 128, 128, 128), (128, 128))
    cx, cy = (anchors[100, 0] + 0.1) * 128, (anchors[100, 1] - 0.05) * 128
    np.testing.assert_allclose(d.boxes[100], [cx - 16, cy - 8, cx + 16, cy + 8], atol=1e-4)
    kept = nms(d, 0.5, 0.3, 10)
    assert len(kept) == 1 and kept.scores[0] == pytest.approx(1 / (1 + np.exp(-3.0)))
    with pytest.raises(DetectionError, match='896 anchors, boxes of shape \\[10, 16\\]'):
        decode_ssd(raw[:10], scores[:10], anchors, (128,) * 4, (128, 128))


def test_streaming_ap_scores_the_newest_finished_output_at_each_frame():
    from tts_perception.common.detection_metrics import streaming_ap
    # an object moving 20 px a frame; each frame's detections are exact but finish 1.5 frames
    # after the frame arrives: every frame is shown the detections of the frame before last
    refs = [FrameBoxes([[20 * i, 0, 20 * i + 40, 40]], [0]) for i in range(6)]
    arrivals = [100.0 * i for i in range(6)]
    exact = [(100.0 * i + 150.0, FrameBoxes(r.boxes, r.classes, [0.9])) for i, r in
             enumerate(refs)]
    late = streaming_ap(exact, arrivals, refs, 1)
    fast = streaming_ap([(a + 10.0, d) for a, (_, d) in zip(arrivals, exact)],
                        [a + 20.0 for a in arrivals], refs, 1)
    assert fast.ap50 == pytest.approx(1.0)
    # two frames behind: boxes 40 px off, IoU 0 -> no frame scores at 0.5; the first two
    # frames have nothing yet
    assert late.ap50 == pytest.approx(0.0)
    # slower motion, 10 px a frame, one frame behind: IoU 0.6 counts at 0.5 to 0.6 only,
    # and the first frame shows nothing yet (recall 5/6)
    slow = [FrameBoxes([[10 * i, 0, 10 * i + 40, 40]], [0]) for i in range(6)]
    behind = streaming_ap([(a + 50.0, FrameBoxes(r.boxes, r.classes, [0.9]))
                           for a, r in zip(arrivals, slow)],
                          [a + 20.0 for a in arrivals], slow, 1)
    assert behind.ap50 == pytest.approx(np.mean(np.linspace(0, 1, 101) <= 5 / 6))
    assert 0.0 < behind.map < behind.ap50
    with pytest.raises(ValueError, match='2 arrivals, 6 references'):
        streaming_ap(exact, arrivals[:2], refs, 1)


def test_detection_signals_from_the_previous_output():
    from tts_perception.tasks.detection_signals import (change, detection_features,
                                                        NO_OBJECT_SIDE_PX)
    cur = Detections([[0, 0, 64, 32], [100, 100, 300, 300]], [0.9, 0.3], [0, 1])
    f = detection_features(None, cur, (640, 480), (160, 120), 0.25)
    # two objects; the smallest side is 32 px at 640x480, 8 px at 160x120; the 0.3 box sits
    # 0.05 above the threshold; no previous frame: everything changed
    np.testing.assert_allclose(f, [2.0, 8.0, 0.05, 1.0], rtol=1e-6)
    assert change(cur, cur) == pytest.approx(0.0)
    moved = Detections(cur.boxes + [32, 0, 32, 0], cur.scores, cur.classes)
    assert 0.0 < change(cur, moved) < 1.0
    relabelled = Detections(cur.boxes, cur.scores, [1, 0])     # same places, other classes
    assert change(cur, relabelled) == pytest.approx(1.0)
    none = Detections.empty()
    assert list(detection_features(cur, none, (640, 480), (160, 120), 0.25)) == \
        [0.0, NO_OBJECT_SIDE_PX, 1.0, 1.0]
    assert change(none, none) == 0.0


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_summed_frame_counts_give_the_ap50_of_the_frames(seed):
    """Per-frame accumulators that add up (as calibrate sums confusion matrices over any set
    of frames) read back the AP50 and recall of those frames, within the score bins' width."""
    from tts_perception.common.detection_metrics import ap50_of_counts, frame_counts
    dets, refs = _scene(np.random.default_rng(seed), n_frames=60)
    counts = np.stack([frame_counts(d, r, 3) for d, r in zip(dets, refs)])
    for part in (slice(None), slice(0, len(dets) // 2), slice(len(dets) // 3, None)):
        exact = average_precision(dets[part], refs[part], 3)
        binned = ap50_of_counts(counts[part].sum(0))
        assert binned.ap50 == pytest.approx(exact.ap50, abs=0.02)
        for b, e in zip(binned.per_class_recall, exact.per_class_recall):
            assert (b is None) == (e is None) and (b is None or b == pytest.approx(e))
