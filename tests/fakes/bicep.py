"""A stand-in for the Bicep CLI (`bicep build FILE --stdout`, `az bicep build --file FILE
--stdout`) where none can be installed: it answers the command lines the real tools accept and
refuses any other, prints the template the test names in FAKE_BICEP_TEMPLATE (it cannot compile
Bicep), and reports a line with `BCP` errors as the real compiler does: on stderr, exit 1."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    log = os.environ.get("FAKE_BICEP_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(" ".join(argv) + "\n")
    if argv[:2] == ["az", "bicep"]:
        argv = argv[2:]
        if len(argv) != 4 or argv[0] != "build" or argv[1] != "--file" or argv[3] != "--stdout":
            print(f"ERROR: unrecognized arguments: {' '.join(argv)}", file=sys.stderr)
            return 2
        source = Path(argv[2])
    else:
        argv = argv[1:]
        if len(argv) != 3 or argv[0] != "build" or argv[2] != "--stdout":
            print(f"Unrecognized parameter(s): {' '.join(argv)}", file=sys.stderr)
            return 1
        source = Path(argv[1])
    if not source.is_file():
        print(f"{source}: error: the file does not exist", file=sys.stderr)
        return 1
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if "=!" in line:
            print(
                f'{source}({number},1) : Error BCP018: Expected the "=" character at this '
                "location. [https://aka.ms/bicep/core-diagnostics#BCP018]",
                file=sys.stderr,
            )
            return 1
    sys.stdout.write(Path(os.environ["FAKE_BICEP_TEMPLATE"]).read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main([Path(sys.argv[1]).name, *sys.argv[2:]]))
