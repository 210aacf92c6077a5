"""Settings that carry their own description and range: one source for every default.

A config dataclass declares each field with :func:`setting`; the nodes' parameter tables
(descriptors, ranges), the check of the YAML files and the README's parameter tables are all
derived from it with :func:`settings_of`, so none of them can drift from the code.
"""

import copy
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, List, Optional, Sequence


@dataclass(frozen=True)
class Setting:
    """One setting: name, default, description, optional numeric range / choices."""

    name: str
    default: Any
    description: str
    lo: Optional[float] = None
    hi: Optional[float] = None
    read_only: bool = False
    choices: Optional[Sequence[Any]] = None


def setting(default: Any, description: str, lo: Optional[float] = None,
            hi: Optional[float] = None, read_only: bool = False,
            choices: Optional[Sequence[Any]] = None):
    """A dataclass field with its description and range (mutable defaults are copied)."""
    meta = {'description': description, 'lo': lo, 'hi': hi, 'read_only': read_only,
            'choices': tuple(choices) if choices is not None else None}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


def settings_of(cls) -> List[Setting]:
    """The settings of a config dataclass, nested config dataclasses flattened in order."""
    out: List[Setting] = []
    inst = cls()
    for f in fields(cls):
        value = getattr(inst, f.name)
        if is_dataclass(value):
            out += settings_of(type(value))
        elif 'description' in f.metadata:
            m = f.metadata
            out.append(Setting(f.name, value, m['description'], m['lo'], m['hi'],
                               m['read_only'], m['choices']))
    return out


def check_value(s: Setting, value: Any) -> None:
    """ValueError naming the setting when ``value`` is outside its range or choices."""
    if s.choices is not None and value not in s.choices:
        raise ValueError(f'{s.name} must be one of {list(s.choices)}, got {value!r}')
    if s.lo is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (s.lo <= value <= s.hi):
            raise ValueError(f'{s.name} must be in [{s.lo}, {s.hi}], got {value!r}')
