"""``docs/results.md``: measured results, one section per command, each dated and tagged with
the machine it ran on, rewritten by the command that makes it (``make bench-node``,
``make demo``, ``make bench``, ...). Nothing else writes numbers into the documentation.
"""

import os
from pathlib import Path
import platform
import re
import shlex
import sys
import time
from typing import Optional, Sequence

from tts_perception.common.paths import share_dir

HEADER = ('# Results\n\nEach section is written by the command named in it, on the machine '
          'named in it; run the command again to refresh it. Numbers from different machines '
          'or dates are not comparable.\n')


def machine_tag() -> str:
    """CPU model, cores, memory, GPU and the ROS 2 distribution, in words (no host names)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem = ''
    try:
        kb = int(Path('/proc/meminfo').read_text().split()[1])
        mem = f', {kb / 2**20:.0f} GiB'
    except (OSError, ValueError, IndexError):
        pass
    gpu = 'no GPU'
    try:
        import torch
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    from tts_perception.nodes.dds import ros_distribution
    return f'{cpu}, {os.cpu_count()} cores{mem}, {gpu}, ROS 2 {ros_distribution().capitalize()}'


def results_path() -> Path:
    return share_dir() / 'docs' / 'results.md'


def command_line(make_target: str, script: str, argv: Optional[Sequence[str]] = None) -> str:
    """How a results section names the command that made it: ``make_target`` when the script
    ran with no arguments (as the make target runs it), else the script with its arguments
    (``argv``, or the process's own)."""
    given = list(argv if argv is not None else sys.argv[1:])
    return make_target if not given else f'python {script} ' + shlex.join(given)


def record(section: str, title: str, command: str, body: str,
           path: Optional[Path] = None) -> Path:
    """Write (or replace) one section of the results file."""
    p = Path(path or results_path())
    text = p.read_text() if p.exists() else HEADER
    block = (f'<!-- results:{section} -->\n## {title}\n\n'
             f'`{command}` · {time.strftime("%Y-%m-%d", time.gmtime())} · {machine_tag()}\n\n'
             f'{body.strip()}\n<!-- /results:{section} -->\n')
    pat = re.compile(rf'<!-- results:{re.escape(section)} -->.*?<!-- /results:'
                     rf'{re.escape(section)} -->\n', re.S)
    text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip('\n') + \
        '\n\n' + block
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p
