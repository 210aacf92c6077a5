"""Reading a profile as a person does: a table on the terminal and a latency-accuracy plot
(used by ``calibrate`` and ``bundled_profile`` alike)."""

from pathlib import Path
from tts_perception.adaptive.profile_data import Profile
from tts_perception.inference.points import OperatingPoint


def _short(t: Profile) -> str:
    """The accuracy's name (mIoU, AP50), without how its reference was made."""
    return t.accuracy.metric.replace('agreement ', '').split(' (')[0]


def print_table(t: Profile) -> None:
    """Human-readable profile summary."""
    r = t.complexity.fit_correlation
    print(f'\nprofile: {t.model} on {t.backend} ({t.device}), {t.frames} frames, '
          f'complexity fit r={"n/a" if r is None else f"{r:.2f}"}; accuracy: '
          f'{t.accuracy.metric}')
    exact = sorted({n for v in t.accuracy.exact.values() for n in v})
    print(f'{"point":>18} {"p50 ms":>7} {"p95 ms":>7} {_short(t):>6} ' +
          ''.join(f'{"exact " + n:>11}' for n in exact) + '  per complexity bin')
    for k in t.points:
        lt = t.latency_ms[k]
        bins = ' '.join(f'{v:.3f}' for v in t.accuracy.miou[k])
        figures = ''.join(_figure(t.accuracy.exact.get(k, {}).get(n)) for n in exact)
        print(f'{k:>18} {lt.p50:7.2f} {lt.p95:7.2f} {t.accuracy.overall[k]:6.3f} {figures}  '
              f'{bins}')
    for k, why in (t.class_floor.blind if t.class_floor else {}).items():
        print(f'{k}: {why} (never chosen by the adaptive policy while a point sees it)')
    for prec, agree in t.precision_agreement.items():
        if agree:
            w = t.precision_worst_class_iou.get(prec, {})
            print(f'{prec} vs fp32: agreement worst {min(agree.values()):.3f}' +
                  (f', worst class {min(w.values()):.3f} (unusable below '
                   f'{t.int8_agreement_bound})' if w else ''))


def _figure(v) -> str:
    return f'{"n/a" if v is None else f"{v:.3f}":>11}'


def print_signals(t: Profile) -> None:
    """Which difficulty signals are on, what each gained out of fold, and the
    estimate's correlation with the accuracy loss."""
    c = t.complexity
    for g, v in c.signals.items():
        gain = 'n/a' if v.validation_gain is None else f'{v.validation_gain:+.3f}'
        r = 'n/a' if v.validation_correlation is None else f'{v.validation_correlation:.2f}'
        held = '' if v.eval_correlation is None else \
            f'; alone on the held-out frames r={v.eval_correlation:.2f}'
        print(f'difficulty signal {g}: {"on" if v.on else "off"} (out-of-fold gain {gain} in '
              f'variance explained, r={r}{held}){": " + v.note if v.note else ""}')
    fmt = (lambda x: 'n/a' if x is None else f'{x:.2f}')
    print(f'difficulty estimate ({", ".join(c.signals_on) or "no signal: a constant"}): '
          f'r={fmt(c.fit_correlation)} on its {t.data.fit_frames} fit frames, '
          f'{fmt(c.validation_correlation)} out of fold, '
          f'{fmt(c.eval_correlation)} on the {t.data.eval_frames} held-out frames')
    if c.signals_on and len(t.data.recordings) < 2 and t.data.bag is not None:
        print('difficulty estimate validated within one recording: its relation to the loss '
              'can differ in another place; calibrate on several recordings of where the '
              'robot works (each is validated on the others) and evaluate before relying on '
              'the savings')


def plot_profile(t: Profile, path: Path) -> None:
    """Latency vs accuracy scatter of all points."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in t.points:
        p = OperatingPoint.parse(k)
        xy = (t.latency_ms[k].p95, t.accuracy.overall[k])
        ax.scatter(*xy, marker='o' if p.precision == 'fp32' else 'x', s=20 + 10 * p.depth)
        ax.annotate(k, xy, fontsize=6)
    ax.set_xscale('log')
    ax.set_xlabel('latency p95 (ms)')
    ax.set_ylabel(f'{_short(t)} (held-out seeds)')
    ax.set_title(f'operating points on {t.device}')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
