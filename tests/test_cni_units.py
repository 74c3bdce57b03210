"""The CNI plugin's parsing and rendering, without the kernel: CNI_* variables,
the network configuration, the result forms of each spec version."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from netsetter_cni import args, config, errors, result, version


def env(**values: str | None) -> dict[str, str]:
    base = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "ctr1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0"}
    return {k: v for k, v in {**base, **values}.items() if v is not None}


def conf(**values: object) -> dict[str, object]:
    base: dict[str, object] = {"cniVersion": "1.0.0", "name": "demo", "type": "netsetter-cni",
                               "ipam": {"subnet": "10.88.0.0/24"}}
    base.update(values)
    return {k: v for k, v in base.items() if v is not None}


def code_of(call, *a) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.CniError) as info:
        call(*a)
    return info.value.code


# --- CNI_* ------------------------------------------------------------------------

def test_version_answer_is_json_with_every_supported_version() -> None:
    answer = json.loads(version.version_result())
    assert answer == {"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]}


def test_the_shell_front_answers_what_version_py_answers() -> None:
    front = (Path(__file__).resolve().parent.parent / "bin" / "netsetter-cni").read_text()
    line = next(line for line in front.splitlines() if "supportedVersions" in line)
    assert json.loads(line[line.index("'{") + 1:line.rindex("'")]) == json.loads(version.version_result())


def installed_front(top: Path, editable: str = "pth") -> Path:
    """bin/netsetter-cni laid out under ``top`` as pip installs it (bin/ beside
    lib/pythonX.Y/site-packages, python in bin/), with this checkout as the editable install
    in either setuptools form ("pth": its directory in a .pth; "finder": a finder's MAPPING)."""
    import shutil
    import sys

    root = Path(__file__).resolve().parent.parent
    (top / "bin").mkdir()
    shutil.copy(root / "bin" / "netsetter-cni", top / "bin")
    (top / "bin" / "python").symlink_to(sys.executable)
    site = top / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    site.mkdir(parents=True)
    if editable == "finder":
        (site / "__editable__.ns_proc-0.1.0.pth").write_text("import __editable___ns_proc_finder; x()")
        mapping = {name: str(root / name) for name in ("backends", "netsetter", "netsetter_cni", "nskit")}
        (site / "__editable___ns_proc_finder.py").write_text(f"import sys\nMAPPING: dict[str, str] = {mapping!r}\n")
    else:
        (site / "__editable__.ns_proc-0.1.0.pth").write_text(f"{root}\n")
    return top / "bin" / "netsetter-cni"


@pytest.mark.parametrize("editable", ["finder", "pth"])
def test_the_shell_front_finds_the_plugin_from_any_directory_and_not_from_the_cwd(tmp_path, editable: str) -> None:  # type: ignore[no-untyped-def]
    """Laid out as pip installs it (bin/ beside lib/pythonX.Y/site-packages), with the editable
    install of either setuptools form; run from a directory holding a decoy netsetter_cni."""
    import os
    import subprocess

    front = installed_front(tmp_path, editable)
    decoy = tmp_path / "cwd" / "netsetter_cni"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy ran')")
    proc = subprocess.run([str(front)], input="{}", capture_output=True, text=True, cwd=decoy.parent, env={"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD"})
    assert proc.returncode == 1 and json.loads(proc.stdout)["code"] == 4, (proc.stdout, proc.stderr)


@pytest.mark.parametrize("command", [None, "", "add", "status", "REPAIR"])
def test_bad_command_is_code_4_naming_the_variable(command: str | None) -> None:
    with pytest.raises(errors.CniError) as info:
        args.read_command(env(CNI_COMMAND=command))
    assert info.value.code == errors.INVALID_ENVIRONMENT and "CNI_COMMAND" in info.value.msg


@pytest.mark.parametrize("values, named", [
    ({"CNI_CONTAINERID": None}, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "-leading-dash"}, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "has space"}, "CNI_CONTAINERID"),
    ({"CNI_NETNS": None}, "CNI_NETNS"),
    ({"CNI_NETNS": "relative/path"}, "CNI_NETNS"),
    ({"CNI_IFNAME": None}, "CNI_IFNAME"),
    ({"CNI_ARGS": "novalue"}, "CNI_ARGS"),
    ({"CNI_ARGS": "K8S_POD_NAME=web"}, "CNI_ARGS"),
])
def test_bad_parameters_are_code_4_naming_the_variable(values: dict[str, str], named: str) -> None:
    with pytest.raises(errors.CniError) as info:
        args.parse(env(**values), "ADD")
    assert info.value.code == errors.INVALID_ENVIRONMENT
    assert named in info.value.msg


def test_del_needs_no_netns_and_unknown_args_pass_with_ignore_unknown() -> None:
    inv = args.parse(env(CNI_COMMAND="DEL", CNI_NETNS="",
                         CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.88.0.9"), "DEL")
    assert inv.netns == "" and inv.args == {"IgnoreUnknown": "1", "IP": "10.88.0.9"}


def test_attachment_names_derive_from_container_and_interface() -> None:
    a = args.parse(env(), "ADD")
    b = args.parse(env(CNI_IFNAME="eth1"), "ADD")
    assert a.owner == "cni:ctr1:eth0"
    assert a.host_veth.startswith("veth") and len(a.host_veth) == 12 and a.host_veth != b.host_veth
    assert a.host_veth == args.parse(env(), "ADD").host_veth  # stable: DEL finds it again


# --- the network configuration -------------------------------------------------------

def test_defaults_are_the_bridge_plugins() -> None:
    c = config.parse(conf())
    assert (c.bridge, c.is_gateway, c.ip_masq, c.mtu) == ("cni0", False, False, None)
    assert c.ipam is not None
    assert (c.ipam.gateway, c.ipam.range_start, c.ipam.range_end) == (
        IPv4Address("10.88.0.1"), IPv4Address("10.88.0.1"), IPv4Address("10.88.0.254"))


def test_is_default_gateway_implies_is_gateway_and_adds_a_default_route() -> None:
    c = config.parse(conf(isDefaultGateway=True, ipam={"subnet": "10.88.0.0/24",
                                                      "routes": [{"dst": "10.99.0.0/16", "gw": "10.88.0.254"}]}))
    assert c.is_gateway
    assert [(str(r.dst), str(c.next_hop(r))) for r in c.routes()] == [
        ("10.99.0.0/16", "10.88.0.254"), ("0.0.0.0/0", "10.88.0.1")]


def test_no_ipam_means_a_link_without_address() -> None:
    c = config.parse(conf(ipam=None))
    assert c.ipam is None and c.routes() == []


@pytest.mark.parametrize("raw, code", [
    (conf(cniVersion="0.2.0"), errors.INCOMPATIBLE_VERSION),
    (conf(cniVersion="2.0.0"), errors.INCOMPATIBLE_VERSION),
    (conf(cniVersion=None), errors.INVALID_CONFIG),
    (conf(name=None), errors.INVALID_CONFIG),
    (conf(name="-bad"), errors.INVALID_CONFIG),
    (conf(type=None), errors.INVALID_CONFIG),
    (conf(bridge="a-name-far-too-long"), errors.INVALID_CONFIG),
    (conf(bridge="has/slash"), errors.INVALID_CONFIG),
    (conf(isGateway="yes"), errors.INVALID_CONFIG),
    (conf(mtu=10), errors.INVALID_CONFIG),
    (conf(mtu=True), errors.INVALID_CONFIG),
    (conf(ipam={"subnet": "10.88.0.0/31"}), errors.INVALID_CONFIG),
    (conf(ipam={"subnet": "nonsense"}), errors.INVALID_CONFIG),
    (conf(ipam={}), None),
    (conf(ipam={"gateway": "10.88.0.1"}), errors.INVALID_CONFIG),
    (conf(ipam={"subnet": "10.88.0.0/24", "gateway": "10.89.0.1"}), errors.INVALID_CONFIG),
    (conf(ipam={"subnet": "10.88.0.0/24", "rangeStart": "10.88.0.50", "rangeEnd": "10.88.0.10"}),
     errors.INVALID_CONFIG),
    (conf(ipam={"subnet": "10.88.0.0/24", "routes": [{"gw": "10.88.0.1"}]}), errors.INVALID_CONFIG),
    (conf(ipam={"type": "../host-local"}), errors.INVALID_CONFIG),
    (conf(ipam={"type": 7}), errors.INVALID_CONFIG),
    (conf(ipam={"type": "netsetter-cni"}), errors.INVALID_CONFIG),  # itself: it would recurse without end
    (conf(ipam={"ranges": [[{"subnet": "10.88.0.0/24"}, {"subnet": "10.89.0.0/24"}]]}), errors.UNSUPPORTED_FIELD),
    (conf(ipam={"ranges": [[{"subnet": "10.88.0.0/24", "exclude": "x"}]]}), errors.UNSUPPORTED_FIELD),
    (conf(ipam={"ranges": "10.88.0.0/24"}), errors.INVALID_CONFIG),
    (conf(ipam={"ranges": [[{"subnet": "fd00::/64"}]]}), errors.UNSUPPORTED_FIELD),
    (conf(ipam={"subnet": "fd00::/64"}), errors.UNSUPPORTED_FIELD),
    (conf(hairpinMode="on"), errors.INVALID_CONFIG),
    (conf(runtimeConfig=[]), errors.INVALID_CONFIG),
    (conf(vlan=100), errors.UNSUPPORTED_FIELD),
    (conf(macspoofchk=True), errors.UNSUPPORTED_FIELD),
])
def test_bad_configurations_get_the_specs_codes(raw: dict[str, object], code: int | None) -> None:
    if code is None:
        assert config.parse(raw).ipam is None
        return
    assert code_of(config.parse, raw) == code


def test_unsupported_field_message_names_key_and_value() -> None:
    with pytest.raises(errors.CniError) as info:
        config.parse(conf(vlanTrunk=[{"id": 5}]))
    assert info.value.msg == 'unsupported field vlanTrunk=[{"id": 5}]'


def test_the_reference_keys_clusters_use_are_accepted() -> None:
    c = config.parse(conf(hairpinMode=True, promiscMode=True, forceAddress=True, isDefaultGateway=True,
                          capabilities={"portMappings": True}, runtimeConfig={"portMappings": []},
                          ipam={"ranges": [[{"subnet": "10.88.0.0/24", "rangeStart": "10.88.0.10",
                                             "rangeEnd": "10.88.0.20", "gateway": "10.88.0.254"}]]}))
    assert (c.hairpin, c.promisc, c.force_address, c.is_gateway, c.ipam_plugin) == (True, True, True, True, None)
    assert c.ipam is not None and (str(c.ipam.range_start), str(c.ipam.range_end), str(c.ipam.gateway)) == (
        "10.88.0.10", "10.88.0.20", "10.88.0.254")


def test_ipam_type_naming_a_plugin_delegates() -> None:
    c = config.parse(conf(ipam={"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24"}]]}))
    assert (c.ipam_plugin, c.ipam) == ("host-local", None)
    assert config.parse(conf(ipam={"type": "netsetter", "subnet": "10.88.0.0/24"})).ipam_plugin is None


def test_cni_args_ip_must_lie_in_the_range() -> None:
    c = config.parse(conf(ipam={"subnet": "10.88.0.0/24", "rangeStart": "10.88.0.10", "rangeEnd": "10.88.0.20"}))
    assert config.wanted_address(c, {"IP": "10.88.0.15"}) == IPv4Address("10.88.0.15")
    assert code_of(config.wanted_address, c, {"IP": "10.88.0.30"}) == errors.INVALID_ENVIRONMENT
    assert code_of(config.wanted_address, c, {"IP": "bogus"}) == errors.INVALID_ENVIRONMENT


# --- results ---------------------------------------------------------------------------

SAMPLE = result.Result(
    interfaces=[result.Interface("cni0", "02:00:00:00:00:01"), result.Interface("veth12345678", "02:00:00:00:00:02"),
                result.Interface("eth0", "02:00:00:00:00:03", "/run/netns/x")],
    ips=[result.IpConfig(IPv4Interface("10.88.0.2/24"), IPv4Address("10.88.0.1"), 2)],
    routes=[result.Route(IPv4Network("0.0.0.0/0"), IPv4Address("10.88.0.1"))],
)


def test_result_1_0_0_has_no_ip_version() -> None:
    out = SAMPLE.render("1.0.0")
    assert out["cniVersion"] == "1.0.0"
    assert out["ips"] == [{"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 2}]
    assert out["interfaces"][2] == {"name": "eth0", "mac": "02:00:00:00:00:03", "sandbox": "/run/netns/x"}
    assert "sandbox" not in out["interfaces"][0]
    assert out["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}]


@pytest.mark.parametrize("older", ["0.4.0", "0.3.1", "0.3.0"])
def test_older_results_carry_the_ip_version(older: str) -> None:
    out = SAMPLE.render(older)
    assert out["cniVersion"] == older
    assert out["ips"] == [{"version": "4", "address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 2}]


@pytest.mark.parametrize("form", ["1.0.0", "0.4.0", "0.3.1"])
def test_prev_result_of_every_form_parses_back(form: str) -> None:
    back = result.parse(json.loads(json.dumps(SAMPLE.render(form))))
    assert back.interfaces == SAMPLE.interfaces and back.ips == SAMPLE.ips and back.routes == SAMPLE.routes


@pytest.mark.parametrize("raw", [{"ips": [{"gateway": "10.88.0.1"}]}, {"interfaces": [{}]},
                                 {"ips": [{"address": "10.88.0.2/24", "interface": 5}]}])
def test_malformed_prev_result_is_code_7(raw: dict[str, object]) -> None:
    assert code_of(result.parse, raw) == errors.INVALID_CONFIG


def test_error_result_has_the_specs_keys() -> None:
    error = errors.CniError(errors.INVALID_CONFIG, "invalid mtu 10: too small", "details here")
    assert error.as_dict("0.4.0") == {"cniVersion": "0.4.0", "code": 7, "msg": "invalid mtu 10: too small",
                                      "details": "details here"}
    assert "details" not in errors.CniError(7, "m").as_dict("1.0.0")


def test_the_shell_front_runs_when_executed_by_a_bare_name_from_its_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """execve("netsetter-cni") with the working directory its folder: the shell's $0 has no '/'."""
    import os
    import subprocess
    import sys

    front = installed_front(tmp_path)
    code = "import os; os.execv('netsetter-cni', ['netsetter-cni'])"
    proc = subprocess.run([sys.executable, "-c", code], input="{}", capture_output=True, text=True,
                          cwd=front.parent, env={"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD"})
    assert proc.returncode == 1 and json.loads(proc.stdout)["code"] == 4, (proc.stdout, proc.stderr)
