"""Issue 8's targets, each a ratio of two rows' medians within one run.

A ratio is the first row's median over the second's: 0.3 means the first
takes 30 % of the second's time. A target without a limit is only reported
(the issue asks for the number, not a bound). A target whose rows were not
measured says why instead of guessing.
"""

from __future__ import annotations

from .results import Row, Run, Verdict


def _why_missing(row: Row | None, key: str) -> str:
    if row is None:
        return f"{key} was not run"
    if row.skipped:
        return f"{row.label}: {row.skipped}"
    if row.error:
        return f"{row.label} failed: {row.error}"
    return f"{row.label}: no samples"


def ratio(run: Run, name: str, num: str, den: str, limit: float | None) -> tuple[Verdict, set[str]]:
    return _ratio(run, name, num, den, limit), {num.split("/")[0], den.split("/")[0]}


def _ratio(run: Run, name: str, num: str, den: str, limit: float | None) -> Verdict:
    top, bottom = run.row(num), run.row(den)
    for row, key in ((top, num), (bottom, den)):
        if row is None or row.stats is None:
            return Verdict(name, limit=limit, why_not=_why_missing(row, key))
    return Verdict(name, ratio=top.stats.median / bottom.stats.median, limit=limit)  # type: ignore[union-attr]


def judge(run: Run) -> list[Verdict]:
    """Every target whose rows' groups were run."""
    ran = set(run.options["groups"])
    return [v for v, groups in _all(run) if groups <= ran]


def _all(run: Run) -> list[tuple[Verdict, set[str]]]:
    opts = run.options
    n = opts["containers"]
    out = [
        ratio(run, "library netlink setup, one container ≤ 0.3× the script",
              "single/lib-netlink", "single/script", 0.3),
        ratio(run, "library ip setup, one container vs the script", "single/lib-ip", "single/script", None),
        ratio(run, f"{n} containers in one process (netlink) ≤ 0.3× {n} script runs",
              "many/lib-netlink", "many/script", 0.3),
        ratio(run, f"{n} containers in one process (ip) vs {n} script runs", "many/lib-ip", "many/script", None),
        ratio(run, "runner start -- /bin/true with network ≤ podman run --rm (CNI bridge)",
              "start/runner-ip", "start/podman", 1.0),
        ratio(run, "runner start (ip) vs unshare + pivot_root + script", "start/runner-ip", "start/pipeline", None),
        ratio(run, "runner start (netlink) vs unshare + pivot_root + script",
              "start/runner-netlink", "start/pipeline", None),
        ratio(run, "runner start --no-net vs unshare alone", "start/runner-nonet", "start/unshare", None),
        ratio(run, "netsetter CLI (ip) ≤ 4× the script", "single/cli-ip", "single/script", 4.0),
        ratio(run, "netsetter CLI (netlink) ≤ 4× the script", "single/cli-netlink", "single/script", 4.0),
        _help_imports(run),
        # issue 16's targets
        ratio(run, "library setup, rtnl, the script's 14 steps ≤ 0.3× the script",
              "single/lib-rtnl", "single/script", 0.3),
        ratio(run, "library setup, rtnl, peer made in place (netsetter.fast) ≤ 0.1× the script",
              "single/fast-rtnl", "single/script", 0.1),
        ratio(run, "netsetter PID --backend rtnl ≤ 2× the script", "single/cli-rtnl", "single/script", 2.0),
        ratio(run, "netsetter PID --backend ip ≤ 4× the script (issue 16)", "single/cli-ip", "single/script", 4.0),
        ratio(run, "netsetter PID --backend netlink ≤ 5× the script (issue 16)",
              "single/cli-netlink", "single/script", 5.0),
        ratio(run, "runner start -- /bin/true with network ≤ 1.0× unshare + pivot_root + script",
              "start/runner-rtnl", "start/pipeline", 1.0),
        ratio(run, "runner start -- /bin/true with network ≤ 0.3× podman run --rm (CNI bridge)",
              "start/runner-rtnl", "start/podman", 0.3),
        ratio(run, "runner start --no-net -- /bin/true ≤ 3× unshare + pivot_root",
              "start/runner-nonet", "start/pipeline-nonet", 3.0),
    ]
    sizes = opts["scale"]
    if len(sizes) > 1:
        for backend in ("netlink", "ip"):
            out.append(ratio(run, f"one more setup ({backend}) with {sizes[-1]} present ≤ 1.5× with {sizes[0]}",
                             f"scale/{backend}@{sizes[-1]}", f"scale/{backend}@{sizes[0]}", 1.5))
    for size in opts["fleet"]:
        # Issue 17's targets are the Fleet API's; N `runner start` processes (one Python
        # parent each, for a container's whole life) are reported beside them.
        for variant, label, limit in (("api", "Fleet API", 0.5), ("cli", "runner start CLI", None)):
            goal = f"≤ {limit:g}×" if limit else "vs"
            out.append(ratio(run, f"{size} containers started + networked ({label}) {goal} Mininet's {size} hosts",
                             f"mininet/{variant}-start@{size}", f"mininet/mininet-build@{size}", limit))
            out.append(ratio(run, f"{size} containers torn down ({label}) {goal} Mininet's teardown",
                             f"mininet/{variant}-stop@{size}", f"mininet/mininet-stop@{size}", limit))
        out += _fleet_facts(run, size)
    for verb, limit in (("version", 3.0), ("add", 3.0), ("del", 2.0)):  # issue 18's targets
        out.append(ratio(run, f"CNI {verb.upper()}: netsetter-cni ≤ {limit:g}× the reference bridge plugin "
                         "(both with host-local)", f"cni/ours-{verb}", f"cni/bridge-{verb}", limit))
        out.append(ratio(run, f"CNI {verb.upper()}: netsetter-cni with its own allocator vs the reference "
                         "bridge plugin", f"cni/ours-own-{verb}", f"cni/bridge-{verb}", None))
    return out


def _fleet_facts(run: Run, size: int) -> list[tuple[Verdict, set[str]]]:
    """Issue 17's yes/no targets of the Fleet API: memory per container, every one reachable."""
    key = f"mininet/api-start@{size}"
    row = run.row(key)
    names = (f"{size} containers (Fleet API): PSS per container, supervisor included, ≤ 2 MB",
             f"{size} containers (Fleet API): every one answers a ping from the host and from another")
    if row is None or row.stats is None or "pss_per_host_mb" not in row.extra:
        return [(Verdict(name, why_not=_why_missing(row, key)), {"mininet"}) for name in names]
    pss = float(row.extra["pss_per_host_mb"])
    seen = f"host {row.extra.get('reach_host')}, one container {row.extra.get('reach_one')}"
    return [(Verdict(names[0], holds=pss <= 2.0, why_not=f"{pss:.2f} MB per container"), {"mininet"}),
            (Verdict(names[1], holds=bool(row.extra.get("reachable")), why_not=seen), {"mininet"})]


def _help_imports(run: Run) -> tuple[Verdict, set[str]]:
    name = "netsetter --help imports neither pyroute2 nor sh"
    row = run.row("startup/netsetter-help")
    if row is None or "imports" not in row.extra:
        return Verdict(name, why_not=_why_missing(row, "startup/netsetter-help")), {"startup"}
    imports = row.extra["imports"]
    detail = ", ".join(f"{m} {'imported' if imports[m] else 'not imported'}" for m in ("pyroute2", "sh"))
    return Verdict(name, holds=not (imports["pyroute2"] or imports["sh"]), why_not=detail), {"startup"}
