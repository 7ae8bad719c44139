#!/usr/bin/env python3
"""Write the man page wyng-util-qubes(1) and the bash completion from the
argparse parsers that `--help` prints, so the three never disagree.

    python3 -m wyngq.cli.manual man OUT.1
    python3 -m wyngq.cli.manual completion OUT.bash

`make man` and `make completion` run it from the top of the repository; it
needs nothing but the standard library. The date in the
man page is SOURCE_DATE_EPOCH's (as rpmbuild and dpkg-buildpackage set it), so
a build is reproducible; without it the page carries no date.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wyngq import __version__, cli, client
from wyngq.errors import ExitCode
from wyngq.profile import PROFILE_DIR

PROG = "wyng-util-qubes"

# What each exit status means (docs/exit-codes.md); a test checks every ExitCode is here.
EXIT_MEANINGS = {
    ExitCode.OK: "success (for a dry run: it would proceed)",
    ExitCode.INTERNAL: "internal error: a bug in wyng-util-qubes",
    ExitCode.USAGE: "invalid request or usage",
    ExitCode.CONFIG: "configuration error: a profile, Wyng missing or too old, the service not installed",
    ExitCode.NOT_PERMITTED: "not permitted: refused by qrexec policy or the profile, or an unauthenticated archive",
    ExitCode.BUSY: "busy: another wyng-util-qubes or Wyng operation is running (see --wait)",
    ExitCode.QUBES: "Qubes error, or a restore plan with blocking problems: nothing was changed",
    ExitCode.AUTH: "the archive did not authenticate (wrong or missing passphrase)",
    ExitCode.PARTIAL: "partial failure: some qubes failed, the others are done",
    ExitCode.WYNG: "Wyng failed",
}

FILES = (
    (f"{PROFILE_DIR}/NAME.toml", "profiles: the archive, the passphrase source, the qubes, qrexec rules"),
    ("/etc/qubes-rpc/qubes.WyngBackup", "the qrexec service a management qube calls"),
    ("/etc/qubes/policy.d/30-user-wyng-util-qubes.policy", "which qubes may call which action (edit this)"),
    ("/run/wyng-util-qubes.lock", "one operation at a time"),
    ("/var/lib/wyng-util-qubes/", "archive records and qrexec job records"),
    ("/var/log/wyng-util-qubes/audit.log", "one line per qrexec call"),
)


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    metavar: str | None  # None: takes no value
    choices: tuple[str, ...]
    help: str
    optional: bool = False  # the value may be left out (nargs="?")

    @property
    def needs_value(self) -> bool:
        return self.metavar is not None and not self.optional


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    positionals: tuple[str, ...]
    options: tuple[Option, ...]


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _option(action: argparse.Action, formatter: argparse.HelpFormatter) -> Option:
    help_text = formatter._expand_help(action) if action.help else ""
    optional = action.nargs == "?"
    if action.nargs == 0:
        metavar = None
    elif optional:
        metavar = formatter._format_args(action, action.dest.upper()).strip("[]")
    else:
        metavar = formatter._format_args(action, action.dest.upper())
    choices = tuple(str(c) for c in action.choices) if action.choices else ()
    return Option(tuple(action.option_strings), metavar, choices, help_text, optional)


def _options(parser: argparse.ArgumentParser, skip: set[str]) -> tuple[Option, ...]:
    formatter = parser._get_formatter()
    return tuple(
        _option(a, formatter) for a in parser._actions
        if a.option_strings and a.dest not in skip and a.help != argparse.SUPPRESS
        and not isinstance(a, argparse._HelpAction)
    )


def global_options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    return _options(parser, skip=set())


def verbs(parser: argparse.ArgumentParser) -> tuple[Verb, ...]:
    """Each action with its own options (the global ones, which every action also
    takes, are left out: they are listed once)."""
    globals_ = {a.dest for a in parser._actions if a.option_strings}
    sub = _subparsers(parser)
    helps = {c.dest: c.help or "" for c in sub._choices_actions}
    found = []
    for name, verb_parser in sub.choices.items():
        positionals = tuple(
            (a.metavar if isinstance(a.metavar, str) else a.dest.upper())
            + ("…" if a.nargs in ("*", "+") else "")
            for a in verb_parser._actions if not a.option_strings
        )
        found.append(Verb(name, helps.get(name, ""), positionals, _options(verb_parser, globals_)))
    return tuple(found)


# -- roff -----------------------------------------------------------------------------------------

def roff(text: str) -> str:
    """Escape text for a roff line: backslashes, hyphens, and a leading . or '."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def _roff_option(option: Option) -> list[str]:
    flags = ", ".join(f"\\fB{roff(f)}\\fR" for f in option.flags)
    if option.metavar:
        value = "{" + ",".join(option.choices) + "}" if option.choices else option.metavar
        joiner = "=" if option.flags[-1].startswith("--") else " "
        flags += f"[{joiner}\\fI{roff(value)}\\fR]" if option.optional else f"{joiner}\\fI{roff(value)}\\fR"
    return [".TP", flags, roff(option.help or "")]


def man_page() -> str:
    """The manual page wyng-util-qubes(1), in roff, from the parsers `--help` prints."""
    dom0 = cli.build_parser()
    remote = client.build_parser()
    out = _man_head(dom0)
    for option in global_options(dom0):
        out += _roff_option(option)
    out += [".SH ACTIONS"]
    for verb in verbs(dom0):
        out += [".SS " + roff(" ".join((verb.name, *verb.positionals))), roff(verb.help)]
        for option in verb.options:
            out += _roff_option(option)
    out += [
        ".SH MANAGEMENT QUBE",
        roff(remote.description or ""),
        roff("It is a client when --remote is given, when WYNGQ_REMOTE=1, or by default when it runs in a "
             "qube; WYNGQ_REMOTE=0 forces the dom0 command. --profile is required."),
    ]
    for option in global_options(remote):
        out += _roff_option(option)
    for verb in verbs(remote):
        line = " ".join((verb.name, *verb.positionals, *(o.flags[-1] for o in verb.options)))
        out += [".TP", f"\\fB{roff(verb.name)}\\fR " + roff(line[len(verb.name):].strip()), roff(verb.help)]
    return "\n".join(out + _man_tail())


def _man_head(dom0: argparse.ArgumentParser) -> list[str]:
    """The title (dated SOURCE_DATE_EPOCH, for reproducible builds), name, synopsis and description."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    date = time.strftime("%Y-%m-%d", time.gmtime(int(epoch))) if epoch else ""
    return [
        f'.TH WYNG\\-UTIL\\-QUBES 1 "{date}" "{PROG} {__version__}" "User Commands"',
        ".SH NAME",
        f"{roff(PROG)} \\- back up and restore Qubes OS qubes, data and settings, with Wyng",
        ".SH SYNOPSIS",
        f".B {roff(PROG)}",
        "[\\fIOPTIONS\\fR] \\fIACTION\\fR [\\fIARGUMENTS\\fR] [\\fIOPTIONS\\fR]",
        ".SH DESCRIPTION",
        roff(dom0.description or ""),
        ".PP",
        roff("In dom0 it backs up qubes' disk volumes and settings into one Wyng session, and restores them: "
             "planned first, with the previous data kept as volume revisions. Options may come before or "
             "after the action. On a terminal it prints text; otherwise, or with --json, JSON Lines whose "
             "last line is always the result."),
        ".PP",
        roff("In a qube (see MANAGEMENT QUBE) the same command forwards each request to dom0."),
        ".SH OPTIONS",
        roff("These options are taken by every action."),
    ]


def _man_tail() -> list[str]:
    """Exit status, files, examples and see also."""
    out = [".SH EXIT STATUS"]
    for code in ExitCode:
        out += [".TP", f"\\fB{int(code)}\\fR", roff(EXIT_MEANINGS[code])]
    out += [".TP", "\\fB128+N\\fR", roff("stopped by signal N (130: Ctrl-C, 143: SIGTERM)")]
    out += [".SH FILES"]
    for path, what in FILES:
        out += [".TP", f"\\fI{roff(path)}\\fR", roff(what)]
    return [
        *out,
        ".SH EXAMPLES",
        ".nf",
        roff(f"sudo {PROG} --dest=file:/mnt/backup/laptop.wyng create"),
        roff(f"sudo {PROG} --profile=laptop backup work personal"),
        roff(f"sudo {PROG} --profile=laptop list"),
        roff(f"sudo {PROG} --profile=laptop restore work --dry-run"),
        roff(f"sudo systemctl enable --now {PROG}-backup@laptop.timer"),
        ".fi",
        ".SH SEE ALSO",
        roff("qvm-volume(1), qvm-backup(1), qrexec-client-vm(1); "
             "/usr/share/doc/wyng-util-qubes/ (README.md and docs/)."),
        "",
    ]


# -- bash completion ------------------------------------------------------------------------------

def _words(items: Iterable[str]) -> str:
    return " ".join(items)


def _completion_table(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    """Bash assignments: the verbs, the global options, and per verb its options."""
    found = verbs(parser)
    glob = global_options(parser)
    lines = [
        f'{prefix}_verbs="{_words(v.name for v in found)}"',
        f'{prefix}_global="{_words(f for o in glob for f in o.flags)}"',
        f'{prefix}_takes_value="{_words(f for o in glob if o.needs_value for f in o.flags)}"',
    ]
    for verb in found:
        var = verb.name.replace("-", "_")
        lines.append(f'{prefix}_opts_{var}="{_words(f for o in verb.options for f in o.flags)}"')
        takes = [f for o in verb.options if o.needs_value for f in o.flags]
        lines.append(f'{prefix}_takes_value_{var}="{_words(takes)}"')
        lines.append(f'{prefix}_qubes_{var}={1 if verb.positionals and "QUBE" in verb.positionals[0] else 0}')
    choices = {f: o.choices for v in found for o in v.options for f in o.flags if o.choices}
    choices.update({f: o.choices for o in glob for f in o.flags if o.choices})
    lines.append(f"{prefix}_choices() {{")
    lines.append('    case "$1" in')
    for flag, values in sorted(choices.items()):
        lines.append(f'        {flag}) echo "{_words(values)}" ;;')
    lines.append("    esac")
    lines.append("}")
    return lines


COMPLETION_BODY = r'''
_wyngq_in_qube() {
    local marker
    [[ ${WYNGQ_REMOTE-} == 1 ]] && return 0
    [[ ${WYNGQ_REMOTE-} == 0 ]] && return 1
    for marker in appvm templatevm netvm proxyvm; do
        [[ -e /run/qubes/this-is-$marker ]] && return 0
    done
    return 1
}

_wyngq_profiles() {
    local dir=${WYNGQ_PROFILE_DIR:-@PROFILE_DIR@} file
    for file in "$dir"/*.toml; do
        [[ -e $file ]] || continue
        file=${file##*/}
        printf '%s\n' "${file%.toml}"
    done
}

_wyngq_qubes() {
    # As Qubes' own completion: the names qvm-ls lists (dom0 only).
    command -v qvm-ls >/dev/null 2>&1 && qvm-ls --raw-list 2>/dev/null
}

_wyng_util_qubes() {
    local cur prev p=_wyngq_dom0 verb="" word i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=""
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
    if _wyngq_in_qube || [[ " ${COMP_WORDS[*]} " == *" --remote "* ]]; then
        p=_wyngq_remote
    fi
    local verbs_var=${p}_verbs global_var=${p}_global takes_var=${p}_takes_value
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word=${COMP_WORDS[i]}
        if [[ " ${!verbs_var} " == *" $word "* ]]; then
            verb=$word
            break
        fi
    done
    local opts_var="" verb_takes_var="" qubes_var=""
    if [[ -n $verb ]]; then
        opts_var=${p}_opts_${verb//-/_}
        verb_takes_var=${p}_takes_value_${verb//-/_}
        qubes_var=${p}_qubes_${verb//-/_}
    fi

    # --option=VALUE
    if [[ $cur == --*=* ]]; then
        local option=${cur%%=*} value=${cur#*=}
        _wyngq_values "$option" "$value" "$p"
        COMPREPLY=( "${COMPREPLY[@]/#/$option=}" )
        compopt -o nospace 2>/dev/null
        return 0
    fi
    # --option VALUE
    local takes=" ${!takes_var} "
    [[ -n $verb_takes_var ]] && takes+="${!verb_takes_var} "
    if [[ -n $prev && $takes == *" $prev "* ]]; then
        _wyngq_values "$prev" "$cur" "$p"
        return 0
    fi
    if [[ $cur == -* ]]; then
        local options="${!global_var}"
        [[ -n $opts_var ]] && options+=" ${!opts_var}"
        COMPREPLY=( $(compgen -W "$options --help" -- "$cur") )
        return 0
    fi
    if [[ -z $verb ]]; then
        COMPREPLY=( $(compgen -W "${!verbs_var}" -- "$cur") )
        return 0
    fi
    if [[ -n $qubes_var && ${!qubes_var} == 1 ]]; then
        COMPREPLY=( $(compgen -W "$(_wyngq_qubes)" -- "$cur") )
    fi
    return 0
}

_wyngq_values() {
    local option=$1 cur=$2 p=$3 choices
    case $option in
        --profile)
            COMPREPLY=( $(compgen -W "$(_wyngq_profiles)" -- "$cur") ) ;;
        --exclude|--rename)
            COMPREPLY=( $(compgen -W "$(_wyngq_qubes)" -- "$cur") ) ;;
        --wyng|--passphrase-file)
            COMPREPLY=( $(compgen -f -- "$cur") ) ;;
        --meta-dir)
            COMPREPLY=( $(compgen -d -- "$cur") ) ;;
        --dest)
            COMPREPLY=( $(compgen -W "file: ssh:// qubes:// qubes-ssh://" -- "$cur") )
            compopt -o nospace 2>/dev/null ;;
        *)
            choices=$(${p}_choices "$option")
            [[ -n $choices ]] && COMPREPLY=( $(compgen -W "$choices" -- "$cur") ) ;;
    esac
}

complete -F _wyng_util_qubes wyng-util-qubes
'''


def completion() -> str:
    head = [
        f"# bash completion for {PROG} (generated by wyngq.cli.manual from the argparse parsers;",
        "# edit those, not this file). Verbs and options as in --help, profile names from the",
        "# profile folder, qube names from qvm-ls --raw-list as Qubes' own completion does.",
    ]
    body = COMPLETION_BODY.replace("@PROFILE_DIR@", PROFILE_DIR)
    return "\n".join(head + _completion_table(cli.build_parser(), "_wyngq_dom0")
                     + _completion_table(client.build_parser(), "_wyngq_remote")) + "\n" + body


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("man", "completion"))
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    text = man_page() if args.what == "man" else completion()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
