"""A detector described by model.yaml (task: detection), run as the package runs models: one
small real ONNX model per output layout, a known box in, the same box out at every input
size; and configuration that fails, naming the mismatch."""

import numpy as np
import pytest
import yaml

import detector_models as dm
from tts_perception.inference.backends import make_backend
from tts_perception.inference.model_desc import load_model_description, ModelError
from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.runner import infer

BOX = (100, 150, 300, 330)          # x1, y1, x2, y2 in the 640x480 camera frame


def _frame(box=BOX, wh=(640, 480)) -> np.ndarray:
    f = np.full((wh[1], wh[0], 3), 30, np.uint8)
    x1, y1, x2, y2 = box
    f[y1:y2, x1:x2] = (240, 200, 10)
    return f


def _run(root, wh, frames, depth=1):
    model = load_model_description(root)
    backend = make_backend('auto', model)
    backend.prepare(['fp32'])
    return model, infer(model, backend, frames, OperatingPoint(wh[0], wh[1], depth, 'fp32'))


def _assert_box(det, wh, camera_wh=(640, 480), box=BOX, cls=1):
    assert len(det) == 1, (det.boxes, det.scores)
    # one input pixel is camera/input camera pixels wide: edges land within one of them
    tol = 1.01 * max(camera_wh[0] / wh[0], camera_wh[1] / wh[1]) + 0.5
    np.testing.assert_allclose(det.boxes[0], box, atol=tol)
    assert det.classes.tolist() == [cls]
    if cls == 1:
        assert det.scores[0] == pytest.approx(dm.SCORES[1], abs=1e-5)


RESOLUTIONS = [(640, 480), (320, 240), (416, 416), (256, 192), (160, 160)]


@pytest.mark.parametrize('resize', ['letterbox', 'stretch'])
@pytest.mark.parametrize('transposed', [False, True])
def test_yolo_layout_gives_the_box_back_at_every_resolution(tmp_path, resize, transposed):
    root = dm.write_detector(tmp_path / 'yolo', [dm.yolo_model(transposed)],
                             {'decoder': 'yolo', 'resize': resize, 'score_threshold': 0.25})
    for wh in RESOLUTIONS:
        model, (dets, conf) = _run(root, wh, [_frame()])
        _assert_box(dets[0], wh)
        assert conf[0] == pytest.approx(dm.SCORES[1], abs=1e-5)


def test_decoded_boxes_layout_by_output_name_and_batch(tmp_path):
    root = dm.write_detector(tmp_path / 'boxes', [dm.boxes_model()], {
        'decoder': 'boxes', 'boxes': {'format': 'xyxy', 'normalized': True,
                                      'outputs': {'boxes': 'boxes', 'scores': 'scores',
                                                  'classes': 'labels'}}})
    other = (400, 40, 600, 200)
    for wh in RESOLUTIONS:
        _, (dets, _) = _run(root, wh, [_frame(), _frame(other)])
        _assert_box(dets[0], wh)
        _assert_box(dets[1], wh, box=other)


def test_ssd_layout_with_generated_anchors(tmp_path):
    root = dm.write_detector(tmp_path / 'ssd', [dm.ssd_model(128, 128.0)], {
        'decoder': 'ssd', 'resize': 'letterbox',
        'ssd': {'input_size': [128, 128], 'strides': [32, 64], 'scales': [128.0] * 4}},
        classes=['box'])
    model = load_model_description(root)
    assert model.fixed_size == (128, 128)
    _, (dets, _) = _run(root, (128, 128), [_frame()])
    _assert_box(dets[0], (128, 128), cls=0)       # one score column: the one class
    assert dets[0].scores[0] == pytest.approx(1 / (1 + np.exp(-5.0)), abs=1e-5)


def test_an_ssd_graph_without_a_fixed_input_size_takes_its_anchors_size(tmp_path):
    """A converted SSD may leave its input height and width open while its head fits one size
    (MediaPipe's person detector); calibrate then profiles that size only."""
    graph = dm.ssd_model(128, 128.0)
    for d in graph.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.ClearField('dim_value')
        d.dim_param = 'S'
    root = dm.write_detector(tmp_path / 'ssd', [graph], {
        'decoder': 'ssd', 'ssd': {'input_size': [128, 128], 'strides': [32, 64]}},
        classes=['box'])
    assert load_model_description(root).fixed_size == (128, 128)
    from tts_perception.adaptive.calibration import default_resolutions
    assert default_resolutions(load_model_description(root), (640, 480)) == [(128, 128)]


def test_users_decoder_by_module_and_function(tmp_path):
    root = dm.write_detector(tmp_path / 'user', [dm.pair_model()],
                             {'decoder': 'detector_models:decode_pair', 'resize': 'stretch'})
    for wh in ((320, 240), (640, 480)):
        _, (dets, _) = _run(root, wh, [_frame()])
        _assert_box(dets[0], wh)


def test_a_ladder_runs_the_model_of_each_depth(tmp_path):
    root = dm.write_detector(tmp_path / 'ladder', [dm.yolo_model(), dm.yolo_model(True)],
                             {'decoder': 'yolo'})
    model = load_model_description(root)
    assert model.structure == 'ladder' and model.depths == (1, 2)
    backend = make_backend('auto', model)
    backend.prepare(['fp32'])
    both = infer(model, backend, [_frame()], OperatingPoint(320, 240, 2, 'fp32'), all_exits=True)
    assert len(both) == 2
    for dets, _ in both:
        _assert_box(dets[0], (320, 240))


def test_an_empty_frame_has_no_detections(tmp_path):
    root = dm.write_detector(tmp_path / 'yolo', [dm.yolo_model()], {'decoder': 'yolo'})
    _, (dets, conf) = _run(root, (320, 240), [np.zeros((480, 640, 3), np.uint8)])
    assert len(dets[0]) == 0 and conf[0] == 1.0


@pytest.mark.parametrize('detection, classes, match', [
    ({'decoder': 'yolo'}, ['a', 'b', 'c'], r'no axis of 7 = 4 box values \+ 3 classes'),
    ({'decoder': 'yolo', 'yolo': {'objectness': True}}, ['a', 'b'], 'objectness'),
    ({'decoder': 'boxes', 'boxes': {'outputs': {'boxes': 'bbox', 'scores': 0}}}, ['a', 'b'],
     r"outputs.boxes is 'bbox', the graph's outputs are \['output0'\]"),
    ({'decoder': 'boxes'}, ['a', 'b'], 'needs a boxes: section'),
    ({'decoder': 'ssd', 'ssd': {'input_size': [128, 128], 'strides': [32]}}, ['a', 'b'],
     'decoder ssd reads 2 output'),
    ({'decoder': 'mystery'}, ['a', 'b'], 'decoder must be one of'),
    ({'decoder': 'no_such_module_x:f'}, ['a', 'b'], 'no_such_module_x'),
    ({'resize': 'crop'}, ['a', 'b'], 'resize must be one of'),
    ({'score_threshold': 1.5}, ['a', 'b'], r'score_threshold must be a number in \[0, 1\]'),
    ({'max_det': 0}, ['a', 'b'], 'max_det must be a positive integer'),
])
def test_a_description_that_does_not_fit_fails_naming_it(tmp_path, detection, classes, match):
    root = dm.write_detector(tmp_path / 'bad', [dm.yolo_model()], detection, classes=classes)
    with pytest.raises(ModelError, match=match):
        load_model_description(root)


def test_ssd_anchor_count_must_match_the_head(tmp_path):
    root = dm.write_detector(tmp_path / 'ssd', [dm.ssd_model(128)], {
        'decoder': 'ssd', 'ssd': {'input_size': [128, 128], 'strides': [16, 64]}})
    with pytest.raises(ModelError, match='40 boxes, the anchor options give 136 anchors'):
        load_model_description(root)


def test_unknown_task_and_chained_detector_are_refused(tmp_path):
    root = dm.write_detector(tmp_path / 'd', [dm.yolo_model()], {'decoder': 'yolo'})
    desc = yaml.safe_load((root / 'model.yaml').read_text())
    (root / 'model.yaml').write_text(yaml.safe_dump({**desc, 'task': 'pose'}))
    with pytest.raises(ModelError, match="task must be one of"):
        load_model_description(root)
    (root / 'model.yaml').write_text(yaml.safe_dump({**desc, 'structure': 'chained'}))
    with pytest.raises(ModelError, match='ladder of models'):
        load_model_description(root)


def _moving_box_frames(n: int, truth_dx: int = 0):
    """``n`` frames of a box moving right, with ground-truth boxes ``truth_dx`` px off."""
    from tts_perception.common.detection_metrics import FrameBoxes
    from tts_perception.common.frames import Frames
    boxes = [(60 + 12 * i, 150, 260 + 12 * i, 330) for i in range(n)]
    truth = [FrameBoxes([[b[0] + truth_dx, b[1], b[2] + truth_dx, b[3]]], [1]) for b in boxes]
    return Frames([_frame(b) for b in boxes], np.arange(n) * 100_000_000, boxes=truth)


def test_a_detector_is_calibrated_on_boxes_and_scheduled_per_frame(tmp_path):
    """The task interface end to end: calibration scores every point by AP50 against the
    frames' boxes (recall as the class floor), and the pipeline runs the profile's choice
    on each frame and hands back boxes in camera pixels."""
    from tts_perception.adaptive.calibration import build_profile
    from tts_perception.adaptive.pipeline import AdaptivePipeline, PipelineConfig
    root = dm.write_detector(tmp_path / 'd', [dm.yolo_model(), dm.yolo_model(True)],
                             {'decoder': 'yolo'})
    model = load_model_description(root)
    backend = make_backend('auto', model)
    backend.prepare(['fp32'], [(320, 240), (640, 480)])
    points = [OperatingPoint(w, h, d, 'fp32') for w, h in ((320, 240), (640, 480))
              for d in (1, 2)]
    prof = build_profile(model, backend, _moving_box_frames(24), points, fit_n=16,
                         latency_runs=4, quiet=True)
    assert prof.accuracy.metric == 'AP50' and prof.data.reference == 'labels'
    assert prof.accuracy.overall == pytest.approx({p.key: 1.0 for p in points}, abs=0.02)
    assert all(v[0] is None and v[1] == pytest.approx(1.0)
               for v in prof.accuracy.per_class_iou.values())      # recall of 'box'
    # the exact COCO figures beside them: AP50 1, mAP@[.5:.95] below it (a box found within a
    # few pixels misses the strictest thresholds), and nothing for a box a quarter off
    assert set(prof.accuracy.exact) == set(prof.points)
    for figures in prof.accuracy.exact.values():
        assert figures['ap50'] == pytest.approx(1.0)
        assert 0.3 < figures['map'] <= figures['ap50']
    # boxes a quarter off: no detection matches at IoU 0.5, every AP50 is 0 and every
    # point blind to the class
    off = build_profile(model, backend, _moving_box_frames(24, truth_dx=120), points,
                        fit_n=16, latency_runs=4, quiet=True)
    assert max(off.accuracy.overall.values()) == 0.0
    assert all(v == {'ap50': 0.0, 'map': 0.0} for v in off.accuracy.exact.values())
    assert set(off.class_floor.blind) == {p.key for p in points}
    assert 'recall 0.000' in next(iter(off.class_floor.blind.values()))
    pipe = AdaptivePipeline(PipelineConfig(model_path=str(root), deadline_ms=1e4),
                            model=model, backend=backend, profile=prof)
    for rgb, truth in zip(_moving_box_frames(5).rgb, _moving_box_frames(5).boxes):
        det, rec = pipe.process(rgb)
        assert rec.point in prof.points and not rec.missed
        _assert_box(det, (rec.width, rec.height), box=tuple(truth.boxes[0]))
    # evaluate's replay: AP50 from the evidence and exact, mAP@[.5:.95]; one frame late, the
    # moving box still overlaps at IoU 0.5 but not at the strict thresholds
    from tts_perception.tools import evaluate
    frames = _moving_box_frames(24)
    run = evaluate.simulate(pipe, frames, frames.boxes, 'adaptive', 1e4)
    assert run.processed == 24 and run.accuracy == pytest.approx(1.0, abs=0.02)
    assert run.exact['ap50'] == pytest.approx(1.0, abs=0.01) and 0.5 < run.exact['map'] <= 1.0
    assert run.exact['streaming_map'] < run.exact['map']
    # the oracle's frontier carries the exact figures of its choices: where it runs one
    # point on every frame, that point's static run's
    runs = {'adaptive': run, **{p.key: evaluate.simulate(pipe, frames, frames.boxes,
                                                         f'static:{p.key}', 1e4)
                                for p in points}}
    res, front, _ = evaluate.judge(pipe, frames, frames.boxes, runs, quiet=True)
    assert front and all(set(f.exact) == {'ap50', 'map'} for f in front)
    single = [f for f in front if len(f.points) == 1]
    assert single
    for f in single:
        (key,) = f.points
        assert f.exact == {k: pytest.approx(runs[key].exact[k]) for k in ('ap50', 'map')}
    at_best = res['comparison']['oracle_exact_at_best_static_accuracy']
    assert at_best['ap50'] == pytest.approx(1.0, abs=0.01) and 0.3 < at_best['map'] <= 1.0
    assert res['oracle_frontier'][0]['exact'] == front[0].exact      # in the JSON too
    # the pareto plot: the metric and each exact figure, per frame and streaming
    rows = evaluate._panels(runs, 'AP50')
    assert [[t for t, _, _ in r] for r in rows] == [
        ['AP50', 'ap50 (exact)', 'map (exact)'],
        ['streaming AP50', 'streaming ap50 (exact)', 'streaming map (exact)']]
    assert rows[0][2][1](run) == run.exact['map'] and rows[0][2][2] == 'map'
    assert rows[1][2][1](run) == run.exact['streaming_map']
    evaluate.plot_pareto(runs, tmp_path / 'pareto.png', 'AP50', front)
    assert (tmp_path / 'pareto.png').stat().st_size > 1000


def test_a_users_torch_detector_runs_on_the_torch_backend(tmp_path):
    """A detector with a torch form (``forward(x, depth)``, the YOLO layout) on the torch
    backend: the same box back at every resolution as from its ONNX graph; a class whose
    forward takes no depth is refused when the backend prepares, naming the contract."""
    import torch
    for cls in ('YoloFinder', 'NoDepth'):
        root = dm.write_detector(tmp_path / cls, [dm.yolo_model()],
                                 {'decoder': 'yolo', 'resize': 'letterbox',
                                  'score_threshold': 0.25},
                                 torch={'weights': 'w.pt', 'class': f'torch_detectors.{cls}'})
        torch.save({}, root / 'w.pt')
    model = load_model_description(tmp_path / 'YoloFinder')
    tb = make_backend('torch', model, device='cpu')
    tb.prepare(['fp32'])
    for wh in RESOLUTIONS:
        dets, conf = infer(model, tb, [_frame()], OperatingPoint(wh[0], wh[1], 1, 'fp32'))
        _assert_box(dets[0], wh)
        assert conf[0] == pytest.approx(dm.SCORES[1], abs=1e-5)
    bad = make_backend('torch', load_model_description(tmp_path / 'NoDepth'), device='cpu')
    with pytest.raises(ModelError, match=r'forward\(x, depth\)'):
        bad.prepare(['fp32'])
    assert not bad.copies
