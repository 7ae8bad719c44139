"""A fake `rpm` for the CI tier: answers the one query wyngq asks, as rpm does.

    fake_rpm.py -qa '--queryformat=[%{FILENAMES}\\n]'

prints the files listed (one a line) in the file named by FAKE_RPM_OWNED, as
real rpm prints every file of every installed package for that query. Any
other command line is refused with rpm's exit status 1, so a change in what
wyngq asks shows up here. FAKE_RPM_FAIL=1 makes it fail like a broken rpm
database.
"""

from __future__ import annotations

import os
import sys

QUERY = ["-qa", "--queryformat=[%{FILENAMES}\\n]"]


def main(argv: list[str]) -> int:
    if argv != QUERY:
        print(f"fake rpm: unexpected arguments {argv!r}", file=sys.stderr)
        return 1
    if os.environ.get("FAKE_RPM_FAIL") == "1":
        print("error: rpmdb: BDB0113 Thread/process failed: Thread died in Berkeley DB library", file=sys.stderr)
        return 1
    with open(os.environ["FAKE_RPM_OWNED"], encoding="utf-8") as handle:
        sys.stdout.write(handle.read())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
