"""The `qubes.WyngBackup` qrexec service: a management qube asks, dom0 decides.

    qubes-rpc/qubes.WyngBackup     the dom0 wrapper qrexec runs (as the dom0 user):
                                   `sudo -n` to a fixed `python3 -I -m wyngq.rpc.service CALLER ACTION`
    service.py                     entry point: one call's result line, job record and audit line
    call.py                        one call: action table, stdin cap, profile, authorisation, then
                                   status or the action under the operation lock, with its job record
    stream.py                      the caller's stdout, written by a thread that never holds up the job
    request.py                     the parser is the validator: untrusted bytes -> frozen dataclasses
    authorize.py                   which caller may do what with a profile ([rpc] rules), pure
    actions.py                     each action -> the engine function the CLI uses
    jobs.py                        job records behind `+status` (and `status` in dom0)
    audit.py                       one line per call in dom0's audit log

Every byte on stdin is hostile; the trusted values (caller, action) come from
qrexec and reach the service module as its two arguments. The caller sees only
stdout and the exit code, so every outcome, errors included, ends with one
JSON `result` line; details of internal errors go to stderr (dom0's qrexec log).
"""
