"""``python -m tts_perception.closed_loop``: see :mod:`tts_perception.tools.closed_loop`."""

import sys

from tts_perception.tools.closed_loop import main

if __name__ == '__main__':
    sys.exit(main())
