"""Which versions of the CNI spec the plugin speaks, and what each one allows.

A runtime sends the configuration's ``cniVersion`` with every command and
expects the result in that version's form (SPEC.md, "Result"): 1.0.0 drops
the ``version`` key of each IP (1.1.0's result is 1.0.0's); CHECK exists from
0.4.0 on, GC and STATUS from 1.1.0. VERSION answers
with the list below. Imports nothing: VERSION must start fast, as runtimes
call it for every plugin of every network, on every container start.
"""

from __future__ import annotations

from .errors import INCOMPATIBLE_VERSION, CniError

LATEST = "1.1.0"
SUPPORTED = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


def version_result() -> str:
    """The VERSION answer as JSON text, built by hand so that VERSION needs no json module."""
    listed = ", ".join(f'"{v}"' for v in SUPPORTED)
    return f'{{"cniVersion": "{LATEST}", "supportedVersions": [{listed}]}}'


def require_supported(version: str) -> str:
    if version not in SUPPORTED:
        raise CniError(INCOMPATIBLE_VERSION, f"incompatible CNI version {version!r}",
                       f"this plugin supports {', '.join(SUPPORTED)}")
    return version


def allows_check(version: str) -> bool:
    """CHECK came with spec 0.4.0; a runtime must not call it for older configurations."""
    return _key(version) >= (0, 4, 0)


def allows_gc_and_status(version: str) -> bool:
    """GC and STATUS came with spec 1.1.0."""
    return _key(version) >= (1, 1, 0)


def ips_carry_version(version: str) -> bool:
    """Results before 1.0.0 say ``"version": "4"`` in each IP configuration."""
    return _key(version) < (1, 0, 0)


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))
