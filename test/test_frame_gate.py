"""The frame gate and its replays (no ROS): newest wins, stale and future drops, ages, the
keep-up cap; a replay with recorded take times reproduces a replay's own decisions."""

import pytest

from tts_perception.common.frame_gate import (Arrival, arrivals_from, FrameGate, FUTURE,
                                              replay, replay_schedule, STALE, WAITING)


def test_newest_wins_and_the_replaced_frame_is_counted():
    g = FrameGate(100.0)
    assert g.offer('a', 1, 0.0, 2.0) == WAITING
    assert g.offer('b', 2, 5.0, 3.0) == WAITING
    t = g.take(8.0)
    assert (t.item, t.stamp_ns, t.transport_ms, t.wait_ms, t.age_ms) == ('b', 2, 3.0, 3.0, 6.0)
    assert g.take(9.0) is None                       # nothing waits any more
    c = g.counts
    assert (c.offered, c.taken, c.dropped, c.stale, c.future) == (2, 1, 1, 0, 0)


def test_future_and_stale_frames_are_dropped_and_near_future_counts_as_age_zero():
    g = FrameGate(40.0, future_tolerance_ms=500.0)
    assert g.offer('far', 1, 0.0, -600.0) == FUTURE
    assert g.offer('old', 2, 1.0, 41.0) == STALE
    assert g.waiting is None
    assert g.offer('near', 3, 2.0, -100.0) == WAITING
    t = g.take(2.0)
    assert t.item == 'near' and t.age_ms == 0.0
    assert g.offer('waits', 4, 10.0, 30.0) == WAITING
    assert g.take(21.0) is None                      # 30 + 11 ms > 40: went stale waiting
    assert (g.counts.future, g.counts.stale, g.counts.taken) == (1, 2, 1)


def test_the_camera_period_is_measured_from_the_arrivals():
    g = FrameGate(100.0)
    assert g.period_ms is None                       # not known yet
    for i in range(30):
        g.offer(i, i, 25.0 * i, 0.0)
    assert g.period_ms == pytest.approx(25.0)


def test_replay_takes_the_newest_frame_whenever_the_worker_is_free():
    arrivals = [Arrival(i, i, 10.0 * i, 1.0) for i in range(10)]     # 100 Hz
    g = FrameGate(100.0)
    taken = []

    def process(t):
        taken.append((t.item, t.take_ms, t.wait_ms))
        return 25.0
    end = replay(g, arrivals, process)
    # t=0 takes 0 (busy to 25: 1 and 2 arrive, 1 replaced); 25 takes 2; 50 takes 5 (3, 4
    # replaced; 5 arrives at 50 exactly); 75 takes 7; 100 takes 9 (8 replaced)
    assert taken == [(0, 0.0, 0.0), (2, 25.0, 5.0), (5, 50.0, 0.0), (7, 75.0, 5.0),
                     (9, 100.0, 10.0)]
    assert end == 125.0
    assert (g.counts.taken, g.counts.dropped, g.counts.stale) == (5, 5, 0)


def test_replay_idle_worker_takes_each_frame_on_arrival_and_drops_stale_ones():
    arrivals = [Arrival(i, i, 50.0 * i, 35.0 if i == 3 else 5.0) for i in range(6)]
    g = FrameGate(30.0)
    seen = []
    replay(g, arrivals, lambda t: seen.append((t.item, t.age_ms)) or 4.0)
    assert seen == [(0, 5.0), (1, 5.0), (2, 5.0), (4, 5.0), (5, 5.0)]
    assert g.counts.stale == 1


def test_replay_schedule_reproduces_the_decisions_of_a_replay():
    arrivals = [Arrival(i, i, 7.0 * i + (3.0 if i % 4 == 0 else 0.0), 2.0) for i in range(60)]
    busy = [3.0, 18.0, 9.0, 30.0, 5.0]
    g = FrameGate(25.0)
    taken = []

    def process(t):
        taken.append(t)
        return busy[len(taken) % len(busy)]
    replay(g, arrivals, process)
    again = FrameGate(25.0)
    got = replay_schedule(again, arrivals, [t.take_ms for t in taken])
    assert [(t.stamp_ns, t.wait_ms) for t in got] == [(t.stamp_ns, t.wait_ms) for t in taken]
    assert again.counts == g.counts and g.counts.dropped > 0


def test_arrivals_from_recorded_stamps():
    a = arrivals_from([0, 100_000_000], [5_000_000, 104_000_000], ['x', 'y'], rate=2.0)
    assert [(x.item, x.arrival_ms, x.transport_ms) for x in a] == [('x', 0.0, 5.0),
                                                                   ('y', 49.5, 4.0)]


def test_a_held_frame_waits_until_its_hold_ends_or_a_newer_one_replaces_it():
    g = FrameGate(100.0)
    g.offer('a', 1, 0.0, 1.0)
    t = g.take(10.0)
    g.hold(t, 40.0)
    assert g.held_until_ms == 40.0 and g.take(39.9) is None and g.waiting is not None
    assert g.offer('b', 2, 33.0, 1.0) == WAITING     # the next frame replaces it: tail
    t = g.take(33.0)
    assert t.item == 'b' and not t.held
    g.hold(t, 70.0)
    t = g.take(70.0)                                 # nothing newer came: it runs, held once
    assert t.item == 'b' and t.held and t.wait_ms == pytest.approx(37.0)
    with pytest.raises(ValueError):
        g.hold(t, 90.0)
    c = g.counts
    assert (c.offered, c.taken, c.tail, c.dropped) == (2, 1, 1, 0)
    # a frame that arrived while the worker decided wins at once
    g.offer('c', 3, 80.0, 1.0)
    t = g.take(80.0)
    g.offer('d', 4, 81.0, 1.0)
    g.hold(t, 120.0)
    assert g.waiting.item == 'd' and g.held_until_ms is None and g.counts.tail == 2


def test_replay_moves_on_to_the_next_frame_or_the_end_of_a_hold():
    arrivals = [Arrival(i, i, 100.0 * i, 0.0) for i in range(3)]
    ran = []

    def process(t):
        if t.item == 0:
            return 90.0                              # frame 1 waits 0 ms: no hold
        if not t.held:
            gate.hold(t, t.take_ms + 50.0)
            return 0.0
        ran.append((t.item, t.take_ms))
        return 10.0
    gate = FrameGate(1000.0)
    end = replay(gate, arrivals, process)
    # 1 is held at 100; its hold ends at 150 before 2 arrives, so it runs then
    assert ran == [(1, 150.0), (2, 250.0)] and end == 260.0
    assert gate.counts.tail == 0 and gate.counts.taken == 3
    # replaying the same takes with the holds reproduces it
    g2 = FrameGate(1000.0)
    got = replay_schedule(g2, arrivals, [0.0, 100.0, 150.0, 200.0, 250.0],
                          [None, 150.0, None, 250.0, None])
    assert [x.item for x in got] == [0, 1, 1, 2, 2] and g2.counts == gate.counts
