"""CNI errors: what the plugin prints on stdout when a command fails.

The spec's error result is one JSON object, printed to stdout with a non-zero
exit status (stderr is free for logs):

    {"cniVersion": "1.0.0", "code": 7, "msg": "...", "details": "..."}

Codes 1-99 are the spec's well-known errors and must not be used for anything
else; 100 and above are the plugin's own. ``msg`` is one line shaped
``failed to <verb> "<object>": <cause>`` or ``invalid <what> ...``; ``details``
adds what a reader needs next (what was undone, how to fix it).

A :class:`CniError` is an :class:`nskit.errors.NsError`, the family every
package of ours raises, with the spec's code on top of its exit status.
This module is imported on every call, VERSION included: of ours it imports
only :mod:`nskit.errors`, which imports nothing beyond what Python starts with.
"""

from __future__ import annotations

from nskit.errors import ExitStatus, NsError

# --- the spec's well-known codes (SPEC.md, "Well-known Error Codes") -----------
INCOMPATIBLE_VERSION = 1  # the configuration's cniVersion is not one we speak
UNSUPPORTED_FIELD = 2  # the message must name the key and its value
UNKNOWN_CONTAINER = 3  # the container (its netns) does not exist: the runtime need not clean up
INVALID_ENVIRONMENT = 4  # a CNI_* variable is missing or wrong: the message must name it
IO_FAILURE = 5  # reading stdin, or a state file, failed
DECODE_FAILURE = 6  # stdin is not a JSON object
INVALID_CONFIG = 7  # the network configuration does not validate
TRY_AGAIN_LATER = 11  # a transient condition (not produced by this plugin)

# --- this plugin's own codes (100 and above) -------------------------------------
OPERATION_FAILED = 100  # a kernel operation failed (the backend's error says which and why)
NO_ADDRESS = 101  # no address could be leased in the configured range
CHECK_FAILED = 102  # CHECK found the network not as prevResult describes it
BACKEND_UNAVAILABLE = 103  # the chosen backend cannot run here (ip or pyroute2 missing)
INTERFACE_EXISTS = 104  # CNI_IFNAME already exists in the container (the spec requires an error)
INTERNAL = 199  # a bug: the traceback is on stderr


class CniError(NsError):
    """A failed command, as the spec's error result. Raised by the domain code,
    printed by :mod:`netsetter_cni.main`."""

    code: int
    msg: str
    details: str
    exit_status: int = ExitStatus.FAILURE  # the spec: any non-zero; 2 for a target that must never be configured

    def __init__(self, code: int, msg: str, details: str = "", *,
                 exit_status: int = ExitStatus.FAILURE) -> None:
        self.code, self.msg, self.details = code, msg, details
        self.exit_status = exit_status
        super().__init__(msg)

    def add_details(self, text: str) -> None:
        self.details = f"{self.details}; {text}" if self.details else text

    def as_dict(self, cni_version: str) -> dict[str, object]:
        out: dict[str, object] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return f"{self.msg}; {self.details}" if self.details else self.msg


def as_cni_error(exc: Exception) -> CniError:
    """Any error of a command as the spec's error: netsetter's own by their kind,
    anything else as a bug (199)."""
    if isinstance(exc, CniError):
        return exc
    from backends import BackendUnavailable
    from nskit.errors import UsageError

    if isinstance(exc, BackendUnavailable):
        return CniError(BACKEND_UNAVAILABLE, str(exc))
    if isinstance(exc, UsageError):
        return CniError(INVALID_CONFIG, str(exc))
    if isinstance(exc, NsError):
        return CniError(OPERATION_FAILED, str(exc))
    if isinstance(exc, OSError):
        return CniError(IO_FAILURE, f'failed to access "{exc.filename}": {exc.strerror}'
                        if exc.filename else f"I/O error: {exc}")
    return CniError(INTERNAL, f"internal error: {type(exc).__name__}: {exc}", "the traceback is on stderr")
