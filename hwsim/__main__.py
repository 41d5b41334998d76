"""``python -m hwsim``."""

import sys

from hwsim.cli import main

sys.exit(main())
