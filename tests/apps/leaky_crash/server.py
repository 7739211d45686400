"""A test application that dies on start, quoting its secret in the last lines of its log."""

import os
import sys

secret = os.environ.get("GAME_DB_PASSWORD")
print(f"connecting to postgres://game:{secret}@db/game", flush=True)
print(f"fatal: password {secret} was refused by db:5432", flush=True)
sys.exit(3)
