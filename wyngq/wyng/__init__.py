"""Everything wyngq knows about the Wyng program: command lines, output, exit codes.

    commands.py   pure builders of Wyng command lines
    runner.py     runs Wyng (through wyngq.process), its exit statuses through one table
    faults.py     what a failed run means when its exit status alone misleads
    catalog.py    `wyng --json list`, parsed into a typed Archive
    known.py      what wyngq last saw of an archive, kept between runs
    text.py       Wyng's output lines: volume headers, the session a send names, progress
    sessions.py   Wyng's session ids (`YYYYMMDD-HHMMSS`)

No module outside this package reads Wyng's output with a regex or names the
files Wyng leaves beside volumes (docs/architecture.md).
"""
