"""Parameter tables of doc/parameters.md, generated from the nodes' parameter tables.

    python -m tts_perception.tools.docs            # rewrite the tables in doc/parameters.md
    python -m tts_perception.tools.docs --check    # exit 1 if the page is out of date

A test runs the check, so the documentation cannot drift from the code.
"""

import argparse
import importlib
from pathlib import Path
import re
import sys
from typing import Optional, Sequence

NODES = ('perception_node', 'controller_node', 'sim_node', 'replay_node')


def _fmt(v) -> str:
    if isinstance(v, str):
        return f"`'{v}'`" if v == '' else f'`{v}`'
    return f'`{v}`'


def table(node: str) -> str:
    """Markdown table of one node's parameters."""
    mod = importlib.import_module(f'tts_perception.nodes.{node}')
    rows = ['| parameter | default | range | description |', '|---|---|---|---|']
    for p in mod.PARAMS:
        rng = (f'{p.lo:g} … {p.hi:g}' if p.lo is not None else
               (' / '.join(str(c) for c in p.choices) if p.choices else ''))
        desc = (p.description.replace('|', '\\|').replace('<', '&lt;').replace('>', '&gt;')
                + (' (read-only)' if p.read_only else ''))
        rows.append(f'| `{p.name}` | {_fmt(p.default)} | {rng} | {desc} |')
    return '\n'.join(rows)


def render(text: str) -> str:
    """Page text with every ``<!-- params:NODE -->`` block regenerated."""
    for node in NODES:
        pat = re.compile(rf'(<!-- params:{node} -->\n).*?(<!-- /params:{node} -->)', re.S)
        text = pat.sub(lambda m, n=node: m.group(1) + table(n) + '\n' + m.group(2), text)
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--page', type=Path,
                    default=Path(__file__).resolve().parents[2] / 'doc' / 'parameters.md')
    a = ap.parse_args(argv)
    text = a.page.read_text()
    new = render(text)
    if a.check:
        if new != text:
            print(f'{a.page} parameter tables are out of date: run '
                  f'python -m tts_perception.tools.docs')
            return 1
        return 0
    a.page.write_text(new)
    return 0


if __name__ == '__main__':
    sys.exit(main())
