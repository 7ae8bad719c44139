"""Restore qubes from a Wyng archive: plan (pure), then apply (docs/restore-semantics.md).

`run.run_restore` is the entry; `plan.plan_restore` the planner; `apply.apply_plan`
the executor; `data` moves the bytes; `qubesxml` reads upstream's settings.
"""
