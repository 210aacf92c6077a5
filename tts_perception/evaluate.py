"""``python -m tts_perception.evaluate``: see :mod:`tts_perception.tools.evaluate`."""

import sys

from tts_perception.tools.evaluate import main

if __name__ == '__main__':
    sys.exit(main())
