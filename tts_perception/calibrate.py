"""``python -m tts_perception.calibrate``: see :mod:`tts_perception.tools.calibrate`."""

import sys

from tts_perception.tools.calibrate import main

if __name__ == '__main__':
    sys.exit(main())
