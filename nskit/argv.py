"""A plain command line parsed from a table, without typer: the common case, fast.

typer (with its vendored click) costs 40-70 ms to import, more than a whole
`runner start --no-net -- /bin/true` and a third of a `netsetter PID`. So the
plain invocations (`runner start ...`, `netsetter PID`, `netsetter down PID`) are
parsed here, from a table of the command's options, and run at once. What this
parser is not sure of - `--help`, an option it does not know, clustered short
flags, a value that does not convert, a value that looks like an option - is
None: the caller hands the line to its typer CLI, which stays the one place that
defines the options, prints help and words usage errors. A test per command
(tests/test_runner_launch.py, tests/test_netsetter_launch.py) holds each table
to typer's own parse.

    Table(values={"--hostname": ("hostname", "str"), "-e": ("env", "list"), ...},
          flags={"--no-net": ("net", False), ...}, defaults={...})
    table.parse(args, rest="command")   # first word that is no option ends them: runner start
    table.parse(args, positional="pid")  # one argument, options around it: netsetter up

Kinds of value: str, int, float, path (pathlib.Path), list (a repeatable str).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3 ms a command)
if TYPE_CHECKING:
    from typing import Any, Callable


def _path(text: str) -> object:
    from pathlib import Path  # only for a command that has a path option (~2 ms)

    return Path(text)


CONVERT: dict[str, Callable[[str], object]] = {"str": str, "list": str, "int": int, "float": float, "path": _path}


class Table:
    """A command's options: ``values`` maps an option to (parameter, kind), ``flags``
    maps one to (parameter, the value it sets), ``defaults`` every parameter's default."""

    __slots__ = ("values", "flags", "defaults")

    def __init__(self, values: dict[str, tuple[str, str]], flags: dict[str, tuple[str, object]],
                 defaults: dict[str, object]) -> None:
        self.values = values
        self.flags = flags
        self.defaults = defaults

    def parse(self, args: list[str], *, positional: str | None = None,
              rest: str | None = None) -> dict[str, Any] | None:
        """The command's parameters for ``args`` (its words after the command's name), or
        None when the CLI must parse them. With ``positional``, exactly one argument, options
        before or after it; with ``rest``, the first argument ends the options (a ``--``
        too) and it and all after it are ``rest``'s list, None when there are none."""
        params = {k: (list(v) if isinstance(v, list) else v) for k, v in self.defaults.items()}
        words = list(args)
        arguments: list[str] = []
        while words:
            word = words.pop(0)
            if word == "--" or word == "-" or not word.startswith("-"):
                if rest is None:
                    if word.startswith("-"):
                        return None  # `--` or `-` before a pid: the CLI says what it means
                    arguments.append(word)
                    continue
                params[rest] = (words if word == "--" else [word, *words]) or None
                break
            name, eq, attached = word.partition("=")
            if name in self.flags and not eq:
                key, flag = self.flags[name]
                params[key] = flag
                continue
            if name not in self.values or (eq and not name.startswith("--")):
                return None
            if eq:
                text = attached
            elif words and not words[0].startswith("-"):
                text = words.pop(0)
            else:
                return None
            key, kind = self.values[name]
            try:
                value = CONVERT[kind](text)
            except ValueError:
                return None
            if kind == "list":
                params[key].append(value)  # type: ignore[attr-defined]
            else:
                params[key] = value
        else:
            if rest is not None:
                params[rest] = None
        if positional is None:
            return None if arguments else params
        if len(arguments) != 1:
            return None
        params[positional] = arguments[0]
        return params
