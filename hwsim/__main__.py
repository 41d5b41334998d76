"""``python -m hwsim``."""

import sys

from hwsim.cli import entry

sys.exit(entry())
