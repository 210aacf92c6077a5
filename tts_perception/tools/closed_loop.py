"""closed_loop: perception and control together on seeded courses, stepped in sim time.

    python -m tts_perception.closed_loop [--seeds 10] [--length 30] [--latency-factor 4]
        [--configs coupled uncoupled golden_safe cheapest coupled_load golden_safe_load]

Each course: the MuJoCo world steps at the control period; the camera's frames pass the
node's frame gate and frame step on the real pipeline, whose measured processing time times
``--latency-factor`` (a slower robot computer) delays each result to the controller; so the
results depend on measured inference times, not on how fast the renderer is. Courses are seeds
the bundled model never trained on, with people stepping into the lane. Per configuration and
seed (:class:`CourseRun`): collisions, clearance, time, speed, stale distance, misses,
fail-safe stops, how often the limit binds; ``closed_loop_out/closed_loop.json``, plots, a
table and a section of ``docs/results.md``. The configurations and why: doc/controller.md.
"""

import argparse
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
import json
from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.adaptive.frame_step import Item, run_step
from tts_perception.adaptive.pipeline import AdaptivePipeline, FrameRequest, PipelineConfig
from tts_perception.common.frame_gate import FrameGate
from tts_perception.common.progress import Progress
from tts_perception.control.control_law import (ControlParams, Perception, SpeedGovernor,
                                                stopping_speed_limit)

# what the governor reads from each task's output (the node reads the same messages)
OBSERVE = {'segmentation': lambda gov, labels, hw: gov.observe_segmentation(labels),
           'detection': lambda gov, det, hw: gov.observe_boxes(det.boxes.astype(float), hw)}
SEEDS_FROM = 5000          # courses the bundled model never saw (training: < 1000, profile,
#                            bench and sample bag: 2000-3000 and 7)


@dataclass(frozen=True)
class LoopConfig:
    """One closed-loop configuration."""

    name: str
    policy: str                  # adaptive | golden | cheapest | static:<point>
    coupled: bool                # the law sees measured latency and quality
    max_speed: Optional[float]   # speed cap (m/s); None: safe for the policy's worst latency
    load: bool = False           # competing CPU processes from the middle of the course


CONFIGS = {c.name: c for c in (
    LoopConfig('coupled', 'adaptive', True, 2.0),
    LoopConfig('uncoupled', 'adaptive', False, 2.0),
    LoopConfig('golden_safe', 'golden', False, None),
    LoopConfig('cheapest', 'cheapest', False, 2.0),
    LoopConfig('coupled_load', 'adaptive', True, 2.0, load=True),
    LoopConfig('golden_safe_load', 'golden', False, None, load=True),
)}


@dataclass
class LoopSettings:
    """What every configuration shares."""

    length: float = 30.0            # m of course
    camera_hz: float = 20.0
    latency_factor: float = 4.0     # sim delay = measured processing time x this
    deadline_ms: float = 50.0       # per-frame deadline on the emulated robot computer
    late_obstacles: int = 2         # people stepping into the lane per course
    max_time: float = 90.0          # s of sim time before a run is called unfinished
    planner_speed: float = 2.0      # the scripted planner's nominal speed (m/s)


CONTEXTS = ('person', 'dark', 'load', 'other')


def context(world, loaded: bool) -> str:
    """Where the robot is, for the speed-limit study: near a person stepping in (from 1 m
    before the trigger to just past), a dark stretch ahead, under the load step, or else."""
    x = world.state.x
    if any(ob.x - ob.trigger_distance - 1.0 <= x <= ob.x + 0.5 for ob in world.course.late):
        return 'person'
    if world.course.segment_at(x + 3.0).kind == 'dark':
        return 'dark'
    return 'load' if loaded else 'other'


def safe_speed(worst_latency_s: float, params: ControlParams) -> float:
    """The fixed speed that can stop for a person who steps into the path as close as the
    scenario allows (at the planner's top speed) when perception lags by ``worst_latency_s``
    (the stop margin kept free, as the law does)."""
    from tts_perception.sim.course import late_obstacle_min_distance
    d = late_obstacle_min_distance(params.max_speed) - params.camera_to_front - \
        params.stop_margin
    return stopping_speed_limit(worst_latency_s + params.control_period, params.max_decel, d)


def resolve_policy(pipe: AdaptivePipeline, policy: str) -> str:
    """'cheapest' -> the static point with the lowest profiled latency."""
    if policy != 'cheapest':
        return policy
    cheapest = min(pipe.points, key=lambda p: pipe.profile.latency_ms[p.key].p50)
    return f'static:{cheapest.key}'


def worst_latency_s(pipe: AdaptivePipeline, policy: str, s: LoopSettings) -> float:
    """Design-time worst capture-to-result latency of a static policy on the emulated
    computer: its profiled p99, scaled, plus a frame waiting up to one camera period."""
    sched = pipe.camera('default').scheduler
    key = sched.golden.key if policy == 'golden' else policy.split(':', 1)[1]
    return pipe.profile.latency_ms[key].p99 * s.latency_factor / 1e3 + 1.0 / s.camera_hz


@dataclass
class CourseRun:
    """One configuration on one course: collisions (moving into something) and contacts
    while standing (``walked_into``), clearance, whether and when it finished, speed, the
    distance driven on stale perception, misses, frames, fail-safe stops, how often the limit
    bound (per context: [binding steps, steps]), time at each point, and the trace."""

    config: str
    seed: int
    policy: str
    collisions: int
    walked_into: int
    min_clearance_m: float
    completed: bool
    time_s: float
    distance_m: float
    mean_speed: float
    stale_distance_m: float
    deadline_miss_rate: float
    frames: Dict[str, int]
    min_compute_ms: float
    fail_safe_stops: int
    limit_binding_fraction: float
    binding_by_context: Dict[str, List[int]]
    time_at_point_s: Dict[str, float]
    speed_cap: float
    late_obstacles: List[Tuple[float, float]]
    trace: List[Dict[str, Any]] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        """The JSON form: every field but the trace."""
        return {k: v for k, v in asdict(self).items() if k != 'trace'}


class _Drive:
    """One course's perception and control state, stepped at the control period: the camera
    captures into the node's frame gate, the pipeline runs a taken frame through the frame
    step, results reach the governor after their (scaled) processing time, and the governor
    commands the robot (see :func:`run_course`)."""

    def __init__(self, pipe: AdaptivePipeline, cfg: LoopConfig, s: LoopSettings,
                 params: ControlParams, policy: str, pause_at: Optional[float],
                 keep_trace: bool):
        self.pipe, self.cfg, self.s, self.policy = pipe, cfg, s, policy
        self.pause_at, self.keep_trace = pause_at, keep_trace
        self.period, self.k = 1.0 / s.camera_hz, s.latency_factor
        self.design_latency_ms = s.deadline_ms if policy == 'adaptive' else \
            worst_latency_s(pipe, policy, s) * 1e3
        cap = cfg.max_speed if cfg.max_speed is not None else \
            safe_speed(worst_latency_s(pipe, policy, s), params)
        self.params = replace(params, max_speed=min(params.max_speed, cap),
                              nominal_rate=s.camera_hz)
        self.gov = SpeedGovernor(self.params)
        self.dt = self.params.control_period
        self.pending: List[tuple] = []     # (delivery time, capture time, output, record)
        self.observe = OBSERVE[pipe.task.name]
        self.gate = FrameGate(s.deadline_ms / self.k)   # pipeline ms: sim time / factor
        self.busy_until, self.next_capture = 0.0, 0.0
        self.stats: Counter = Counter()
        self.point_time: Counter = Counter()
        self.trace: List[Dict[str, Any]] = []
        self.min_clear, self.stale_dist, self.fresh_prev, self.prev_hit = \
            float('inf'), 0.0, False, ''
        self.min_compute = float('inf')     # the fastest processed frame, pipeline ms
        self.last_point, self.last_delivery = None, None
        self.procs: list = []
        self.load_from = s.length / 2 if cfg.load else None

    def capture(self, world, t: float) -> None:
        """The camera's frame, offered to the gate while perception answers. A frame that a
        newer one will replace before the worker is free is never seen: it is not rendered."""
        if t + 1e-9 < self.next_capture:
            return
        self.next_capture += self.period
        self.stats['captured'] += 1
        pause_at = self.pause_at
        if pause_at is None or t < pause_at:
            seen = self.busy_until < self.next_capture or (
                pause_at is not None and self.next_capture >= pause_at)
            self.gate.offer(world.render_rgb() if seen else None, int(t * 1e9),
                            t * 1e3 / self.k, 0.0)

    def perceive(self, t: float) -> None:
        """Run the waiting frame once the worker is free (an unrendered frame waits only to
        be replaced: the next capture comes before the worker is free)."""
        gate, k = self.gate, self.k
        if gate.waiting is None or gate.waiting.item is None or \
                self.busy_until >= t + self.dt - 1e-9:
            return
        start = max(t, self.busy_until)          # waits for the frame in progress
        taken = gate.take(start * 1e3 / k)
        if taken is None:
            return
        req = FrameRequest(taken.item, deadline_ms=self.s.deadline_ms / k, age_ms=taken.age_ms,
                           transport_ms=taken.transport_ms, period_ms=gate.period_ms)
        step = run_step(self.pipe, [Item(gate, taken, req, taken.wait_ms)])[0]
        if step.held:                          # held: the next frame is rendered
            return
        rec = step.rec
        done = start + rec.total_ms * k / 1e3
        self.busy_until = done + step.probe_ms * k / 1e3
        self.pending.append((done, taken.arrival_ms * k / 1e3, step.output, rec,
                             taken.item.shape[:2]))
        self.stats['processed'] += 1
        self.min_compute = min(self.min_compute, rec.total_ms)
        self.stats['missed'] += int(rec.missed)

    def deliver(self, t: float) -> None:
        """Results whose processing time has passed reach the governor."""
        cfg, params = self.cfg, self.params
        for item in [x for x in self.pending if x[0] <= t + 1e-9]:
            self.pending.remove(item)
            done, captured, output, rec, image_hw = item
            if self.last_delivery is not None and self.last_point is not None:
                self.point_time[self.last_point] += done - self.last_delivery
            self.last_point, self.last_delivery = rec.point, done
            lat = (done - captured) * 1e3 if cfg.coupled else self.design_latency_ms
            self.gov.on_perception(Perception(
                stamp=done - lat / 1e3, latency_ms=lat,
                width=rec.width if cfg.coupled else params.full_resolution_width,
                quality=rec.predicted_accuracy if cfg.coupled else 1.0))
            self.observe(self.gov, output, image_hw)

    def control(self, world, t: float) -> None:
        """The planner's command through the governor; the world steps; the counts."""
        from tts_perception.sim.world import scripted_command
        gov, stats = self.gov, self.stats
        v_nom, w_nom = scripted_command(world, self.s.planner_speed)
        gov.on_command(t, v_nom, w_nom)
        v, w = gov.step(t)
        fresh = gov.fresh(t)
        if self.fresh_prev and not fresh:
            stats['fail_safe_stops'] += 1
        self.fresh_prev = fresh
        if not fresh:
            self.stale_dist += v * self.dt
        where = context(world, bool(self.procs))
        stats[f'steps_{where}'] += 1
        if gov.v_limit < v_nom - 1e-6 and fresh:
            stats['limit_binding_steps'] += 1
            stats[f'binding_{where}'] += 1
        stats['steps'] += 1
        hit = world.step(v, w, self.dt)
        if hit and hit != self.prev_hit:      # a new contact: the robot drove into it,
            stats['collisions' if v > 1e-6 else 'walked_into'] += 1   # or was hit
        self.prev_hit = hit
        self.min_clear = min(self.min_clear, world.clearance())
        if self.keep_trace:
            self.trace.append({'t': t, 'x': world.state.x, 'y': world.state.y, 'v': v,
                               'v_limit': gov.v_limit if fresh else 0.0,
                               'latency_q': gov.latency_quantile(),
                               'distance': gov.effective_distance(),
                               'slowing': gov.slowing,
                               'point': self.last_point or '', 'fresh': fresh})

    def result(self, seed: int, t: float, x_end: float, late: list) -> CourseRun:
        stats = self.stats
        c = self.gate.counts
        stats['dropped'] = c.dropped + c.stale + c.tail
        return CourseRun(
            config=self.cfg.name, seed=seed, policy=self.policy,
            collisions=int(stats['collisions']), walked_into=int(stats['walked_into']),
            min_clearance_m=float(self.min_clear), completed=bool(x_end >= self.s.length),
            time_s=float(t), distance_m=float(x_end),
            mean_speed=float(x_end / t) if t > 0 else 0.0,
            stale_distance_m=float(self.stale_dist),
            deadline_miss_rate=stats['missed'] / max(1, stats['processed']),
            frames={k2: int(stats[k2]) for k2 in ('captured', 'processed', 'dropped')},
            min_compute_ms=float(self.min_compute),
            fail_safe_stops=int(stats['fail_safe_stops']),
            limit_binding_fraction=stats['limit_binding_steps'] / max(1, stats['steps']),
            binding_by_context={ctx: [int(stats[f'binding_{ctx}']), int(stats[f'steps_{ctx}'])]
                                for ctx in CONTEXTS},
            time_at_point_s={k2: float(v2) for k2, v2 in self.point_time.items()},
            speed_cap=float(self.params.max_speed), late_obstacles=late, trace=self.trace)


def run_course(pipe: AdaptivePipeline, cfg: LoopConfig, seed: int, s: LoopSettings,
               params: ControlParams = ControlParams(), pause_at: Optional[float] = None,
               keep_trace: bool = True) -> CourseRun:
    """Drive one course; ``pause_at``: perception stops answering from that sim time on."""
    from tts_perception.sim.world import World
    from tts_perception.tools.load import start_load, stop_load
    policy = resolve_policy(pipe, cfg.policy)
    pipe.restart(policy)
    d = _Drive(pipe, cfg, s, params, policy, pause_at, keep_trace)
    t = 0.0
    with World(seed, s.length, late_obstacles=s.late_obstacles) as world:
        try:
            while t < s.max_time and world.state.x < s.length:
                if d.load_from is not None and not d.procs and world.state.x >= d.load_from:
                    d.procs = start_load('cpu')
                d.capture(world, t)
                d.perceive(t)
                d.deliver(t)
                d.control(world, t)
                t += d.dt
        finally:
            stop_load(d.procs)
            x_end = world.state.x
            late = [(ob.x, world.course.lane_y(ob.x)) for ob in world.course.late]
    return d.result(seed, t, x_end, late)


@dataclass
class ConfigSummary:
    """One configuration over its seeds: totals, means and the worst clearance; how often
    the limit bound per context (binding steps / steps)."""

    seeds: int
    collisions: int
    walked_into: int
    runs_with_collision: int
    completed: int
    min_clearance_m: float
    mean_time_s: float
    mean_speed: float
    stale_distance_m: float
    deadline_miss_rate: float
    fail_safe_stops: int
    limit_binding_fraction: float
    binding_by_context: Dict[str, float]
    speed_cap: float


def summarise(runs: List[CourseRun]) -> Dict[str, ConfigSummary]:
    """Per configuration: totals and means over seeds."""
    out = {}
    for name in dict.fromkeys(r.config for r in runs):
        rs = [r for r in runs if r.config == name]
        out[name] = ConfigSummary(
            seeds=len(rs), collisions=int(sum(r.collisions for r in rs)),
            walked_into=int(sum(r.walked_into for r in rs)),
            runs_with_collision=int(sum(r.collisions > 0 for r in rs)),
            completed=int(sum(r.completed for r in rs)),
            min_clearance_m=float(min(r.min_clearance_m for r in rs)),
            mean_time_s=float(np.mean([r.time_s for r in rs])),
            mean_speed=float(np.mean([r.mean_speed for r in rs])),
            stale_distance_m=float(np.sum([r.stale_distance_m for r in rs])),
            deadline_miss_rate=float(np.mean([r.deadline_miss_rate for r in rs])),
            fail_safe_stops=int(sum(r.fail_safe_stops for r in rs)),
            limit_binding_fraction=float(np.mean([r.limit_binding_fraction for r in rs])),
            binding_by_context={c: float(sum(r.binding_by_context[c][0] for r in rs) /
                                         max(1, sum(r.binding_by_context[c][1] for r in rs)))
                                for c in CONTEXTS},
            speed_cap=float(rs[0].speed_cap))
    return out


def plot_trajectories(runs: List[CourseRun], seed: int, s: LoopSettings, path: Path) -> None:
    """One seed: every configuration's path over the course's obstacles."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from tts_perception.sim.course import make_course
    course = make_course(seed, s.length, late_obstacles=s.late_obstacles)
    fig, ax = plt.subplots(figsize=(12, 4))
    for ob in course.obstacles:
        ax.add_patch(plt.Circle((ob.x, ob.y), ob.radius, color='0.6'))
    for ob in course.late:
        y = course.lane_y(ob.x)
        ax.plot([ob.x, ob.x], [y - ob.offset, y + ob.offset], 'r:', lw=1)
        ax.add_patch(plt.Circle((ob.x, y), ob.radius, color='r', alpha=0.4))
    for r in runs:
        if r.seed != seed or not r.trace:
            continue
        ax.plot([p['x'] for p in r.trace], [p['y'] for p in r.trace], lw=1,
                label=f'{r.config} ({r.collisions} collisions)')
    ax.set_xlim(0, s.length)
    ax.set_ylim(-3.5, 3.5)
    ax.set_aspect('equal')
    ax.set_xlabel('x (m)')
    ax.set_title(f'seed {seed}: paths; grey obstacles, red: people stepping into the lane')
    ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_profile(run: CourseRun, path: Path) -> None:
    """Speed, speed limit, operating point and latency along the course for one run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from tts_perception.common.plotting import plot_points
    tr = run.trace
    x = [p['x'] for p in tr]
    fig, ax = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    ax[0].plot(x, [p['v_limit'] for p in tr], lw=0.8, label='speed limit')
    ax[0].plot(x, [p['v'] for p in tr], lw=0.8, label='commanded speed')
    for lx, _ in run.late_obstacles:
        ax[0].axvline(lx, color='r', ls=':', lw=0.8)
    ax[0].set_ylabel('m/s')
    ax[0].legend(fontsize=7)
    plot_points(ax[1], x, [p['point'] for p in tr], ms=2)
    ax[2].plot(x, [1e3 * p['latency_q'] for p in tr], lw=0.8, label='latency quantile (ms)')
    ax[2].plot(x, [100 * p['distance'] for p in tr], lw=0.8, label='effective distance (cm)')
    ax[2].legend(fontsize=7)
    ax[2].set_xlabel('x along the course (m); red: where people step in')
    ax[0].set_title(f'{run.config}, seed {run.seed}')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(summary: Dict[str, ConfigSummary]) -> List[str]:
    """Markdown table rows (also printed)."""
    rows = ['| configuration | runs with a collision | collisions | hit while stopped | '
            'runs finished | min clearance m | '
            'mean speed m/s | mean time s | stale distance m | deadline misses % | '
            'fail-safe stops | limit binds % (near people / dark / load / elsewhere) | '
            'speed cap m/s |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for name, m in summary.items():
        rows.append(f'| {name} | {m.runs_with_collision}/{m.seeds} | {m.collisions} | '
                    f'{m.walked_into} | {m.completed}/{m.seeds} | '
                    f'{m.min_clearance_m:.2f} | {m.mean_speed:.2f} | '
                    f'{m.mean_time_s:.1f} | {m.stale_distance_m:.2f} | '
                    f'{100 * m.deadline_miss_rate:.1f} | {m.fail_safe_stops} | '
                    f'{100 * m.limit_binding_fraction:.0f} ('
                    + ' / '.join(f'{100 * m.binding_by_context[c]:.0f}' for c in CONTEXTS)
                    + f') | {m.speed_cap:.2f} |')
    print('\n'.join(rows))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seeds', type=int, default=10)
    ap.add_argument('--length', type=float, default=LoopSettings.length)
    ap.add_argument('--latency-factor', type=float, default=LoopSettings.latency_factor)
    ap.add_argument('--deadline-ms', type=float, default=LoopSettings.deadline_ms)
    ap.add_argument('--camera-hz', type=float, default=LoopSettings.camera_hz)
    ap.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument('--model', default=PipelineConfig().model_path,
                    help='the perception model (models/tts_detnet: the bundled detector)')
    ap.add_argument('--out', type=Path, default=Path('closed_loop_out'))
    ap.add_argument('--no-record', dest='record', action='store_false')
    a = ap.parse_args(argv)
    from tts_perception.common.paths import share_dir
    s = LoopSettings(length=a.length, latency_factor=a.latency_factor,
                     deadline_ms=a.deadline_ms, camera_hz=a.camera_hz)
    pipe = AdaptivePipeline(PipelineConfig(model_path=a.model, backend='onnxruntime'),
                            base_dir=share_dir())
    runs = []
    todo = [(c, SEEDS_FROM + i) for c in a.configs for i in range(a.seeds)]
    prog = Progress(len(todo), 'closed loop')
    t0 = time.monotonic()
    for j, (c, seed) in enumerate(todo):
        runs.append(run_course(pipe, CONFIGS[c], seed, s, keep_trace=True))
        prog.update(j + 1, f'{c} seed {seed}')
    prog.close()
    summary = summarise(runs)
    a.out.mkdir(parents=True, exist_ok=True)
    for r in runs:
        if r.seed == SEEDS_FROM and r.config in ('coupled', 'coupled_load', 'golden_safe'):
            plot_profile(r, a.out / f'profile_{r.config}.png')
    plot_trajectories(runs, SEEDS_FROM, s, a.out / 'trajectories.png')
    res = {'settings': asdict(s), 'seeds': [SEEDS_FROM + i for i in range(a.seeds)],
           'configs': {c: asdict(CONFIGS[c]) for c in a.configs},
           'summary': {k: asdict(v) for k, v in summary.items()},
           'wall_s': time.monotonic() - t0,
           'runs': [r.summary() for r in runs]}
    res['targets'] = targets(summary)
    res['targets'].update(finished_speed_ratio(runs))
    (a.out / 'closed_loop.json').write_text(json.dumps(res, indent=1))
    rows = print_table(summary)
    for k, v in res['targets'].items():
        print(f'{k}: {v}')
    print(f'wrote {a.out}/closed_loop.json and plots')
    if a.record:
        record(res, rows, a, runs)
    return 0


def targets(summary: Dict[str, ConfigSummary]) -> Dict[str, Any]:
    """The experiment's claims, checked on the summary (None where a configuration is
    missing)."""
    g = summary.get
    out: Dict[str, Any] = {}
    if g('coupled'):
        out['coupled_zero_collisions'] = summary['coupled'].collisions == 0 and (
            not g('coupled_load') or summary['coupled_load'].collisions == 0)
    if g('coupled') and g('golden_safe'):
        out['coupled_speed_over_golden_safe'] = (summary['coupled'].mean_speed /
                                                 max(1e-9, summary['golden_safe'].mean_speed))
    if g('coupled') and g('cheapest'):
        ch, co = summary['cheapest'], summary['coupled']
        out['cheapest_collides_or_slower'] = bool(ch.collisions > 0 or
                                                  ch.mean_speed < co.mean_speed)
    if g('coupled') and g('uncoupled'):
        u, co = summary['uncoupled'], summary['coupled']
        out['uncoupled_vs_coupled'] = {
            'collisions': [u.collisions, co.collisions],
            'min_clearance_m': [u.min_clearance_m, co.min_clearance_m],
            'mean_speed': [u.mean_speed, co.mean_speed]}
    return out


def unfinished(runs: Sequence[CourseRun], max_time: float) -> str:
    """A line naming the runs that stopped short of the course's end, where and how far from
    the nearest obstacle ('' when every run finished)."""
    left = [r for r in runs if not r.completed]
    if not left:
        return ''
    return (f'Not finished within {max_time:.0f} s (configuration seed: where the robot stood, '
            f'its clearance to the nearest obstacle over the run): ' + '; '.join(
                f'{r.config} {r.seed}: {r.distance_m:.1f} m, '
                f'{r.min_clearance_m:.2f} m' for r in left) + '.\n\n')


def finished_speed_ratio(runs: Sequence[CourseRun]) -> Dict[str, Any]:
    """coupled's mean speed over golden_safe's on the seeds both finished (a run that stopped
    for good lowers its configuration's mean speed whatever its law): the ratio and how many
    seeds it is over; empty without both configurations."""
    if not {'coupled', 'golden_safe'} <= {r.config for r in runs}:
        return {}
    by = {(r.config, r.seed): r for r in runs}
    both = sorted(seed for (c, seed), r in by.items() if c == 'coupled' and r.completed
                  and (('golden_safe', seed) in by and by[('golden_safe', seed)].completed))
    ratio = None if not both else float(
        np.mean([by[('coupled', s)].mean_speed for s in both]) /
        max(1e-9, np.mean([by[('golden_safe', s)].mean_speed for s in both])))
    return {'coupled_speed_over_golden_safe_where_both_finished': ratio,
            'seeds_both_finished': len(both)}


def record(res: Dict[str, Any], rows: List[str], a, runs: Sequence[CourseRun]) -> None:
    """The run's section of docs/results.md."""
    from tts_perception.tools.results import command_line, record as write
    s = res['settings']
    t = res['targets']
    body = (f'{len(res["seeds"])} seeded courses ({res["seeds"][0]}-{res["seeds"][-1]}, '
            f'{s["length"]:.0f} m, {s["late_obstacles"]} people stepping into the lane each) '
            f'per configuration; camera {s["camera_hz"]:.0f} Hz, per-frame deadline '
            f'{s["deadline_ms"]:.0f} ms, perception delay = measured processing time x '
            f'{s["latency_factor"]:g} (a slower robot computer); sim time, wall '
            f'{res["wall_s"] / 60:.0f} min. A run is finished when the robot reaches the '
            f'course\'s end within {s["max_time"]:.0f} s of sim time.\n\n' + '\n'.join(rows) +
            '\n\n' + unfinished(runs, s['max_time']) +
            '\n'.join(f'- {k}: {v}' for k, v in t.items()) +
            '\n\n![paths of every configuration on one course](closed_loop_trajectories.png)\n\n'
            '![speed, speed limit, operating point and law inputs along the course, coupled]'
            '(closed_loop_coupled.png)')
    if a.model != PipelineConfig().model_path:       # another model: its own section
        cmd = command_line('make closed-loop', '-m tts_perception.closed_loop')
        write(f'closed-loop-{Path(a.model).name}',
              f'Closed loop: {Path(a.model).name} and control together', cmd,
              body.split('\n\n![')[0])
        return
    import shutil
    from tts_perception.tools.results import results_path
    docs = Path(results_path()).parent
    for src, dst in (('trajectories.png', 'closed_loop_trajectories.png'),
                     ('profile_coupled_load.png', 'closed_loop_coupled.png')):
        if (a.out / src).exists():
            shutil.copy(a.out / src, docs / dst)
    write('closed-loop', 'Closed loop: perception and control together', 'make closed-loop',
          body)


if __name__ == '__main__':
    sys.exit(main())
