"""The public JSON contract: every JSON line wyngq prints, as typed frozen dataclasses.

`events` holds the progress events, `results` the result line (its envelope and
the data of the actions that have no engine result of their own), `serialize` the
one serializer. The schema files in `wyngq/data/schema/` are generated from
these dataclasses and the engine's result dataclasses by `wyngq.contract.schema`
(docs/json.md). This package imports nothing of cli or rpc, and only the
standard library at import.
"""

from __future__ import annotations

# The version of the contract, in every result line's `schema` field (docs/json.md):
# `wyngq/N` changes N when a field is removed or renamed, or its type or meaning changes.
SCHEMA = "wyngq/1"
