"""Frames lost in transport, estimated from the camera's stamps alone."""

import numpy as np
import pytest

from tts_perception.common.camera_stream import FramePeriod, TransportLoss

pytestmark = pytest.mark.unit


def _feed(keep: np.ndarray, period_s: float = 1 / 30, jitter_s: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    loss = TransportLoss()
    t0 = 1_000_000_000
    for i in np.flatnonzero(keep):
        stamp = t0 + int(round(i * period_s * 1e9 + rng.normal(0, jitter_s) * 1e9))
        loss.arrived(stamp, i * period_s + 0.004)
    return loss


@pytest.mark.parametrize('drop', [0.0, 0.05, 0.3, 0.76, 0.85])
def test_lost_frames_within_ten_percent_of_the_truth(drop):
    rng = np.random.default_rng(int(drop * 100))
    keep = rng.random(600) >= drop
    keep[0] = keep[-1] = True              # losses before the first frame are unknowable
    loss = _feed(keep, jitter_s=0.001)
    really = int((~keep).sum())
    assert loss.received == int(keep.sum())
    assert abs(loss.lost - really) <= max(1, 0.1 * really), (loss.lost, really)
    assert loss.period_s == pytest.approx(1 / 30, rel=0.1)


@pytest.mark.parametrize('drop', [0.0, 0.1])
def test_a_driver_that_stamps_when_it_publishes_and_falls_behind_loses_nothing(drop):
    # 5 Hz; now and then publishing a frame takes 1.5-1.95 periods: the next frame goes out
    # (and is stamped) at once, the one after it on time again: a long gap, then a short one;
    # 15 such hiccups in 150 frames (more than a tenth of the gaps are short)
    period, n = 0.2, 150
    rng = np.random.default_rng(1)
    stamps = np.arange(n) * period
    for j in rng.choice(np.arange(2, n - 2, 3), 15, replace=False):
        stamps[j + 1] = stamps[j] + rng.uniform(1.5, 1.95) * period
    keep = rng.random(n) >= drop
    keep[0] = keep[-1] = True
    # a hiccup's late frame lost in transport leaves no short gap: count what is checkable
    loss = TransportLoss()
    for i in np.flatnonzero(keep):
        loss.arrived(1_000_000_000 + int(round(stamps[i] * 1e9)), stamps[i] + 0.004)
    assert loss.period_s == pytest.approx(period, rel=0.05)
    really = int((~keep).sum())
    assert abs(loss.lost - really) <= max(1, 0.1 * really), (loss.lost, really)
    assert loss.recent_fraction(stamps[-1] + 0.004) <= 0.1 + drop


def test_no_loss_on_a_clean_stream_and_a_pause_is_not_loss():
    keep = np.ones(300, bool)
    keep[100:190] = False                  # 3 s without frames: camera paused, not lost
    loss = _feed(keep)
    assert loss.lost == 0


def test_recent_fraction_follows_the_last_seconds():
    loss = TransportLoss(recent_s=2.0)
    period = 0.1
    stamp = 0
    for i in range(40):                    # 4 s clean
        stamp += int(period * 1e9)
        loss.arrived(stamp, i * period)
    assert loss.recent_fraction(4.0) == 0.0
    t = 4.0
    for _ in range(10):                    # then every other frame lost
        stamp += int(2 * period * 1e9)
        t += 2 * period
        loss.arrived(stamp, t)
    assert loss.lost == 10
    assert loss.recent_fraction(t) == pytest.approx(10 / 20, abs=0.1)


def test_held_gaps_before_the_estimate_are_counted_once_it_exists():
    keep = np.zeros(60, bool)
    keep[[0, 4, 8, 12]] = True             # heavy loss first (3 lost per gap) ...
    keep[20:60] = True                     # ... then a clean run gives the period
    loss = _feed(keep)
    assert loss.lost == int((~keep[:60]).sum())


def test_out_of_order_or_repeated_stamps_count_nothing():
    loss = TransportLoss(warmup=2)
    for s in (1, 2, 3, 3, 2, 4):
        loss.arrived(s * 100_000_000, s * 0.1)
    assert loss.lost == 0 and loss.received == 6


def test_frame_period_ignores_pauses():
    fp = FramePeriod(alpha=0.5)
    for t in (0.0, 0.1, 0.2, 5.0, 5.1):
        fp.arrived(t)
    assert fp.period_s == pytest.approx(0.1)


def test_middleware_reports_count_when_no_frame_arrives():
    loss = TransportLoss()
    for i in range(30):
        loss.reported(1, i / 30)
    assert loss.received == 0 and loss.lost == 30
    assert loss.recent_fraction(1.0) == 1.0


def test_the_larger_lower_bound_wins():
    keep = np.ones(200, bool)
    keep[50:60] = False
    loss = _feed(keep)
    assert loss.from_stamps == 10
    loss.reported(4, 7.0)              # the middleware saw fewer: stamps decide
    assert loss.lost == 10
    loss.reported(20, 7.1)             # more: the middleware decides
    assert loss.lost == 24


def test_a_slow_triggered_camera_keeps_the_memory_bounded():
    """A camera at 0.33 Hz: every gap is over max_gap_s, so none is held for an estimate
    that never comes, and arrivals older than recent_s are forgotten."""
    loss = TransportLoss(max_gap_s=2.0, recent_s=10.0)
    for i in range(5000):
        loss.arrived(int(i * 3e9), i * 3.0)
    assert len(loss._held) <= loss.warmup and len(loss._arrivals) <= 4
    assert loss.lost == 0 and loss.period_s is None
