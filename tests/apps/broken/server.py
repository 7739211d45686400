"""A test application that fails at start, as a release with a bad configuration would."""

import sys

print("fatal: GAME_DATABASE is not reachable", flush=True)
sys.exit(3)
