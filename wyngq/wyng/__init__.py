"""Everything wyngq knows about the Wyng program: command lines, output, exit codes."""
