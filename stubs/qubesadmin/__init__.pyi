# Type stubs for the slice of qubesadmin that wyngq uses (so mypy runs without it).
from qubesadmin import app as app
from qubesadmin import exc as exc
from qubesadmin import vm as vm
from qubesadmin.app import QubesBase

DEFAULT: object

def Qubes() -> QubesBase: ...
