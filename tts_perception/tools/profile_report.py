"""Reading a profile as a person does: a table on the terminal and a latency-accuracy plot
(used by ``calibrate`` and ``bundled_profile`` alike)."""

from pathlib import Path
from typing import Dict

from tts_perception.inference.points import OperatingPoint


def print_table(t: Dict) -> None:
    """Human-readable profile summary."""
    r = t['complexity']['fit_correlation']
    print(f'\nprofile: {t["model"]} on {t["backend"]} ({t["device"]}), {t["frames"]} frames, '
          f'complexity fit r={"n/a" if r is None else f"{r:.2f}"}; accuracy: '
          f'{t["accuracy"].get("metric", "mIoU")}')
    print(f'{"point":>18} {"p50 ms":>7} {"p95 ms":>7} {"mIoU":>6}  per complexity bin')
    for k in t['points']:
        lt = t['latency_ms'][k]
        bins = ' '.join(f'{v:.3f}' for v in t['accuracy']['miou'][k])
        print(f'{k:>18} {lt["p50"]:7.2f} {lt["p95"]:7.2f} {t["accuracy"]["overall"][k]:6.3f}  '
              f'{bins}')
    for k, why in t.get('class_floor', {}).get('blind', {}).items():
        print(f'{k}: {why} (never chosen by the adaptive policy while a point sees it)')
    worst = t.get('precision_worst_class_iou', {})
    for prec, agree in t.get('precision_agreement', {'int8': t['int8_agreement']}).items():
        if agree:
            w = worst.get(prec, {})
            print(f'{prec} vs fp32: pixel agreement worst {min(agree.values()):.3f}' +
                  (f', worst per-class IoU {min(w.values()):.3f} (unusable below '
                   f'{t["int8_agreement_bound"]})' if w else ''))


def plot_profile(t: Dict, path: Path) -> None:
    """Latency vs accuracy scatter of all points."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in t['points']:
        p = OperatingPoint.parse(k)
        ax.scatter(t['latency_ms'][k]['p95'], t['accuracy']['overall'][k],
                   marker='o' if p.precision == 'fp32' else 'x', s=20 + 10 * p.depth)
        ax.annotate(k, (t['latency_ms'][k]['p95'], t['accuracy']['overall'][k]), fontsize=6)
    ax.set_xscale('log')
    ax.set_xlabel('latency p95 (ms)')
    ax.set_ylabel('mIoU (held-out seeds)')
    ax.set_title(f'operating points on {t["device"]}')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
