"""ns-proc's benchmark (issue 8): every path measured against the original script and its peers.

    sudo .venv/bin/python -m bench [--runs 15] [--json out.json] [--markdown out.md]

Everything runs as root in throwaway network namespaces (:mod:`bench.sandboxes`),
never in the machine's own, and is removed at the end, also on Ctrl-C.

    __main__.py    the command: options in, tables out
    run.py         one run: the groups in turn, then the targets
    cases/         one module per row group of the issue, a to g:
                   single, many, start, scale, startup, cni, mininet
    peers/         what ns-proc is compared with where it takes more than a command line:
                   pipeline.sh (unshare + pivot_root + netsetter.sh), the Mininet driver
    fleet.py       N runner containers alive at once (group g)
    timing.py      samples, rounds, median/min/max
    targets.py     issue 8's targets as ratios of rows
    report.py      rich tables, JSON, Markdown
    sandboxes.py, system.py, addressing.py, machine.py, context.py, options.py, results.py
"""
