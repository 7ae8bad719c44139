"""`python3 -m wyngq ...` runs the CLI from a checkout."""

from wyngq.cli import main

raise SystemExit(main())
