"""The bundled detector's network: its training targets and its exported layout."""

import numpy as np
import pytest
import torch

from tts_perception.model.detnet import DetNet, STRIDE, targets

pytestmark = pytest.mark.unit


def test_positives_are_cells_near_the_centre_inside_the_box():
    box = np.array([[40, 16, 120, 96]], np.float32)          # centre (80, 56)
    cls, dist, pos = targets([box], [np.array([2])], (128, 160), 3)
    ys, xs = np.nonzero(pos[0])
    cx, cy = (xs + 0.5) * STRIDE, (ys + 0.5) * STRIDE
    assert len(xs) and np.all(np.abs(cx - 80) <= 1.5 * STRIDE) and \
        np.all(np.abs(cy - 56) <= 1.5 * STRIDE)
    assert np.all((cx > 40) & (cx < 120) & (cy > 16) & (cy < 96))
    assert cls[0, 2][pos[0]].all() and not cls[0, :2].any() and not cls[0, 2][~pos[0]].any()
    # the distances decode back to the box from every positive cell
    sides = np.exp(dist[0][:, pos[0]]) * STRIDE
    np.testing.assert_allclose(cx - sides[0], 40, atol=1e-4)
    np.testing.assert_allclose(cy + sides[3], 96, atol=1e-4)


def test_a_tiny_box_gets_its_nearest_cell_and_the_smaller_box_wins_overlaps():
    big = [0, 0, 160, 128]
    small = [70, 50, 74, 54]                                   # between cell centres
    cls, _, pos = targets([np.array([big, small], np.float32)], [np.array([1, 0])],
                          (128, 160), 3)
    row, col = 52 // STRIDE, 72 // STRIDE
    assert cls[0, 0, row, col] == 1 and cls[0, 1, row, col] == 0
    assert pos[0].sum() > 1


def test_the_graph_ends_in_the_yolo_layout_at_any_multiple_of_the_stride():
    net = DetNet('small', 3).eval()
    for h, w in ((120, 160), (240, 320), (96, 200)):
        with torch.no_grad():
            out = net(torch.rand(2, 3, h, w) * 255)
        assert out.shape == (2, 4 + 3, (h // STRIDE) * (w // STRIDE))
        assert torch.all(out[:, 2:4] > 0) and torch.all((out[:, 4:] >= 0) & (out[:, 4:] <= 1))
