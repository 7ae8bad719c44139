# Type stubs for the slice of qubesadmin that wyngq uses (so mypy runs without it).
from qubesadmin import app as app, exc as exc, vm as vm
from qubesadmin.app import QubesBase

DEFAULT: object

def Qubes() -> QubesBase: ...
