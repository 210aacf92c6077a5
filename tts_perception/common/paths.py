"""Where the package's config, launch and model files live (source tree or installed share)."""

from pathlib import Path

_SRC = Path(__file__).resolve().parents[2]


def share_dir() -> Path:
    """The source tree when running from it, else ``share/tts_perception`` of the install."""
    if (_SRC / 'package.xml').exists() and (_SRC / 'config').is_dir():
        return _SRC
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory('tts_perception'))


def config_file(name: str) -> Path:
    """A file under ``config/``; raises FileNotFoundError with the path tried."""
    p = share_dir() / 'config' / name
    if not p.exists():
        raise FileNotFoundError(f'config file {p} does not exist')
    return p
