"""``python -m bench``: measure every path against the original script and its peers (issue 8).

Parse the options, run the groups (:mod:`bench.run`), print the tables,
write the JSON. Progress goes to stderr, results to stdout. Ctrl-C and
SIGTERM stop the run after removing what it made (exit 130 and 143).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwound like Ctrl-C so that every cleanup runs."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@app.command(help="Benchmark ns-proc against netsetter.sh, unshare, the CNI bridge plugin and Mininet, "
                  "in throwaway network namespaces, as root. Groups: a single, b many, c start, d scale, "
                  "e startup, f cni, g mininet.")
def main(
    runs: Annotated[int, typer.Option("--runs", min=1, help="Measured runs per row (median, min, max).")] = 15,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs per row first.")] = 1,
    containers: Annotated[int, typer.Option("--containers", min=1, help="N for group b.")] = 100,
    scale: Annotated[str, typer.Option("--scale", metavar="N,N,...",
                                       help="Containers already on the bridge, group d.")] = "1,100,500,1000",
    fleet: Annotated[str, typer.Option("--fleet", metavar="N,N,...",
                                       help="Hosts/containers for group g.")] = "100,1000",
    fleet_runs: Annotated[int, typer.Option("--fleet-runs", min=1,
                                            help="Runs per size in group g (each builds N hosts).")] = 3,
    fleet_cli_max: Annotated[int, typer.Option(
        "--fleet-cli-max", min=0, help="Largest N for N `runner start` processes in group g "
                                       "(each holds ~40 MB of Python).")] = 200,
    fleet_backend: Annotated[str, typer.Option("--fleet-backend", metavar="ip|netlink",
                                               help="netsetter backend of group g's containers.")] = "netlink",
    fleet_memory_share: Annotated[float, typer.Option(
        "--fleet-memory-share", min=0.05, max=0.95,
        help="Skip a size of group g whose memory, extrapolated from a smaller one, exceeds this share "
             "of the available memory (there is no swap: the OOM killer would pick any process).")] = 0.6,
    cpu_window: Annotated[float, typer.Option("--cpu-window", min=0.1,
                                              help="Seconds of CPU/packet sampling after set-ups.")] = 2.0,
    only: Annotated[Optional[str], typer.Option("--only", metavar="GROUPS", help="Run only these groups.")] = None,
    skip: Annotated[Optional[str], typer.Option("--skip", metavar="GROUPS", help="Skip these groups.")] = None,
    script: Annotated[Optional[Path], typer.Option(
        "--script", metavar="PATH", help="The original netsetter.sh [default: $NETSETTER_SCRIPT, "
                                         "else ../shared/seed/netsetter.sh]")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", metavar="PATH",
                                                      help="Also write every sample as JSON.")] = None,
    markdown_path: Annotated[Optional[Path], typer.Option("--markdown", metavar="PATH",
                                                          help="Also write the tables as Markdown.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Print tracebacks of failing groups.")] = False,
) -> None:
    from rich.console import Console

    from . import report
    from .options import Options, find_script, parse_groups, parse_sizes
    from .progress import reporter
    from .results import GROUPS
    from .run import CannotRun, run_all

    err = Console(stderr=True, log_path=False)
    try:
        options = Options(script=find_script(script), runs=runs, warmup=warmup, containers=containers,
                          scale=parse_sizes("--scale", scale), fleet=parse_sizes("--fleet", fleet),
                          fleet_runs=fleet_runs, fleet_cli_max=fleet_cli_max, fleet_backend=fleet_backend,
                          fleet_memory_share=fleet_memory_share, cpu_window=cpu_window, groups=parse_groups(only, skip), json_path=json_path,
                          markdown_path=markdown_path)
        if fleet_backend not in ("ip", "netlink"):
            raise ValueError(f"--fleet-backend {fleet_backend!r}: choose ip or netlink")
    except ValueError as exc:
        err.print(f"[red]bench: error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with reporter(err, [GROUPS[group] for group in options.groups]) as shown:
            result = run_all(options, shown.log, debug=debug, advance=shown.advance)
    except CannotRun as exc:
        err.print(f"[red]bench: error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except Terminated:
        err.print("bench: terminated; what it made was removed")
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        err.print("bench: interrupted; what it made was removed")
        raise typer.Exit(130) from None
    # Piped or redirected (a log, the README), the tables keep their full width.
    report.print_tables(result, Console() if sys.stdout.isatty() else Console(width=170))
    if json_path:
        report.write_json(result, json_path)
        err.print(f"bench: wrote {json_path}")
    if markdown_path:
        report.write_markdown(result, markdown_path)
        err.print(f"bench: wrote {markdown_path}")
    raise typer.Exit(1 if result.leftovers else 0)


if __name__ == "__main__":
    sys.exit(app())
