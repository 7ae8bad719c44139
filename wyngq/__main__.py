"""`python3 -m wyngq ...`: the command (dom0's /usr/bin/wyng-util-qubes runs this)."""

from wyngq.cli import command

command()
