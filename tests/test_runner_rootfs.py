"""Root filesystems: the built-in busybox root, tarballs unpacked safely, the cache."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from runner import busybox, idmap, rootfs, tarball
from runner.errors import Failed

from .test_runner_support import cache_dir, scratch, start  # noqa: F401


def make_tar(path: Path, members: list[tuple[str, str, str]]) -> Path:
    """A tarball of (kind, name, data): kind file, dir, symlink (data: target) or hardlink (data: target)."""
    with tarfile.open(path, "w") as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data.encode()))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "chardev": tarfile.CHRTYPE}[kind]
            info.mode = 0o755 if kind == "dir" else 0o666
            info.linkname = data
            tar.addfile(info)
    return path


SAFE = [
    ("dir", "bin", ""),
    ("file", "bin/busybox", "ELF"),
    ("symlink", "bin/sh", "/bin/busybox"),  # absolute: read inside the container, where / is this root
    ("symlink", "lib64", "bin"),
    ("symlink", "usr/lib/up", "../../bin"),
    ("hardlink", "bin/ash", "bin/busybox"),
    ("chardev", "dev/null", ""),  # skipped: /dev is made at start
    ("file", "./etc/os-release", "ID=test\n"),
]


def test_safe_tarball_unpacks(scratch):
    root = scratch / "root"
    root.mkdir()
    tarball.unpack(make_tar(scratch / "ok.tar", SAFE), root)
    assert (root / "etc/os-release").read_text() == "ID=test\n"
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    assert os.path.samefile(root / "bin/ash", root / "bin/busybox")
    assert not (root / "dev/null").exists()


@pytest.mark.parametrize("member, reason", [
    (("file", "/etc/evil", "x"), "has an absolute path '/etc/evil'"),
    (("file", "../evil", "x"), "has a path with '..'"),
    (("file", "a/../../evil", "x"), "has a path with '..'"),
    (("symlink", "bin/out", "../../../etc"), "links to '../../../etc', which is outside the root"),
    (("hardlink", "bin/h", "/etc/shadow"), "links to an absolute path '/etc/shadow'"),
    (("hardlink", "bin/h", "../etc/shadow"), "links to a path with '..'"),
    (("hardlink", "bin/h", "bin/missing"), "is not a regular file unpacked before it"),
])
def test_unsafe_member_is_refused(scratch, member, reason):
    root = scratch / "root"
    root.mkdir()
    archive = make_tar(scratch / "bad.tar", [("dir", "bin", ""), member])
    with pytest.raises(Failed) as caught:
        tarball.unpack(archive, root)
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f'failed to unpack "{archive}": refused member')


@pytest.mark.parametrize("members", [
    # etc -> /etc, then etc/passwd: written through the link, it would be the host's.
    [("symlink", "etc", "/etc"), ("file", "etc/passwd", "evil")],
    # a link replaced by a file: open() would follow the link.
    [("symlink", "x", "/tmp"), ("file", "x", "evil")],
    # a hard link to a link: link() would follow it to a host file.
    [("symlink", "s", "/etc/shadow"), ("hardlink", "h", "s")],
])
def test_nothing_goes_through_a_link(scratch, members):
    root = scratch / "root"
    root.mkdir()
    with pytest.raises(Failed, match="refused member"):
        tarball.unpack(make_tar(scratch / "bad.tar", members), root)


def test_busybox_is_static():
    found = busybox.find()
    assert not busybox.is_dynamic(found)
    assert busybox.is_dynamic(Path(os.path.realpath(sys.executable))) or busybox.is_dynamic(Path("/bin/ls"))


def test_missing_busybox_names_the_package(monkeypatch, scratch):
    monkeypatch.setattr(busybox, "CANDIDATES", (str(scratch / "busybox"),))
    with pytest.raises(Failed, match="apt-get install busybox-static"):
        rootfs.prepare(None, scratch / "cache")


def test_builtin_root_is_built_once_with_every_applet(scratch):
    cache = scratch / "cache"
    root, in_place = rootfs.prepare(None, cache)
    assert not in_place
    assert root.parent == cache / "rootfs" and root.name.startswith("busybox-")
    assert (root / "bin/busybox").is_file()
    for applet in busybox.applets(busybox.find()):
        assert os.path.lexists(root / applet), applet
    assert os.readlink(root / "bin/sh") == "/bin/busybox"
    assert oct((cache / "rootfs").stat().st_mode & 0o777) == "0o700"
    stamp = root.stat().st_mtime_ns
    assert rootfs.prepare(None, cache) == (root, False) and root.stat().st_mtime_ns == stamp
    assert [p.name for p in (cache / "rootfs").iterdir()] == [root.name]  # no temporary left


def test_cache_dir_of_root(scratch):
    assert rootfs.cache_dir(scratch) == scratch
    assert rootfs.cache_dir() == Path("/var/cache/ns-proc")  # the tests run as root; other users:
    # test_runner_unprivileged.py


def test_tarball_root_in_a_container(sandbox, cache_dir, scratch):
    # A tarball made from the built-in root, with a file of its own.
    source, _ = rootfs.prepare(None, cache_dir)
    archive = scratch / "root.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(source, arcname=".")
        data = b"from the tarball\n"
        info = tarfile.TarInfo("etc/marker")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    box = sandbox()
    for _ in range(2):  # the second run finds it unpacked
        proc = start(box, cache_dir, "--no-net", "--rootfs", str(archive), "--", "/bin/cat", "/etc/marker")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "from the tarball\n"
    unpacked = [p.name for p in (cache_dir / "rootfs").iterdir() if p.name.startswith("tar-")]
    # Unpacked for the unprivileged mapping: its files belong to the container's ids, shifted.
    assert unpacked == [f"tar-{rootfs.sha256(archive)[:16]}-u{idmap.RANGE_START}"]
    marker = cache_dir / "rootfs" / unpacked[0] / "etc" / "marker"
    assert (marker.stat().st_uid, marker.stat().st_gid) == (idmap.RANGE_START, idmap.RANGE_START)


@pytest.mark.parametrize("owner, options, note_uid", [
    ("host root", ["--map-root-to-caller"], 0),  # the article's mapping: container root is host root
    ("the range", [], idmap.RANGE_START),  # chown'ed to the unprivileged range, as runc wants its bundle
    ("host root", [], None),  # under the unprivileged mapping, host root's files are not the container's
])
def test_directory_root_is_used_in_place(sandbox, cache_dir, scratch, owner, options, note_uid):
    root = scratch / "root"
    shutil.copytree(rootfs.prepare(None, cache_dir)[0], root, symlinks=True)
    (root / "etc" / "marker").write_text("from the directory\n")
    if owner == "the range":
        rootfs.give(root, idmap.Mapping(idmap.RANGE_START, idmap.RANGE_START, idmap.RANGE_SIZE))
    box = sandbox()
    proc = start(box, cache_dir, "--no-net", *options, "--rootfs", str(root), "--", "/bin/sh", "-c",
                 "cat /etc/marker; echo written > /tmp/note && mv /tmp/note /root/note")
    assert proc.stdout.startswith("from the directory\n")
    note = root / "root" / "note"
    if note_uid is None:
        assert proc.returncode != 0
        assert "Permission denied" in proc.stderr
        assert not note.exists()  # /tmp is everyone's; /root (0700) is host root's
    else:
        assert proc.returncode == 0, proc.stderr
        assert note.read_text() == "written\n"  # in place: the directory itself is written
        assert note.stat().st_uid == note_uid


def test_rootfs_that_is_not_a_tarball(sandbox, cache_dir, scratch):
    box = sandbox()
    junk = scratch / "junk.bin"
    junk.write_bytes(b"\0" * 100)
    proc = start(box, cache_dir, "--no-net", "--rootfs", str(junk), "--", "/bin/true")
    assert proc.returncode == 2
    assert proc.stderr == f"runner: error: invalid --rootfs '{junk}': is neither a directory nor a tar archive\n"


def test_a_layer_is_removed_without_following_its_links(tmp_path: Path) -> None:
    from runner.layer import remove_tree

    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "kept").write_text("host file")
    home = tmp_path / "layer"
    (home / "upper" / "deep" / "er").mkdir(parents=True)
    (home / "upper" / "deep" / "er" / "file").write_text("x")
    (home / "upper" / "to-dir").symlink_to(outside)
    (home / "upper" / "deep" / "to-file").symlink_to(outside / "sub" / "kept")
    (home / "upper" / "dangling").symlink_to(tmp_path / "nothing")
    os.mkfifo(home / "upper" / "fifo")
    remove_tree(home)
    assert not os.path.lexists(home)
    assert (outside / "sub" / "kept").read_text() == "host file"
    remove_tree(home)  # gone already: nothing to do, no error


def test_a_layer_being_made_is_never_collected_by_a_start_beside_it(tmp_path: Path) -> None:
    # Two runner starts at once: each collects the layers whose runner is gone while the other
    # makes its own. A lock file made in place was free between its open and its flock, and the
    # collecting start removed the other's new layer ("failed to create the writable layer").
    from runner.idmap import Mapping
    from runner.layer import Layer, collect

    image = tmp_path / "image"
    image.mkdir()
    (tmp_path / "layers").mkdir()
    stop_r, stop_w = os.pipe()
    collector = os.fork()
    if collector == 0:  # collects until the pipe is closed; never returns into pytest
        try:
            os.close(stop_w)
            os.set_blocking(stop_r, False)
            while True:
                collect(tmp_path)
                try:
                    if os.read(stop_r, 1) == b"":
                        break
                except BlockingIOError:
                    pass
        finally:
            os._exit(0)
    os.close(stop_r)
    failures = []
    try:
        for _ in range(1500):
            try:
                Layer.create(tmp_path, image, False, Mapping(0, 0, 1)).remove()
            except Failed as exc:
                failures.append(str(exc))
    finally:
        os.close(stop_w)
        os.waitpid(collector, 0)
    assert failures == []
    assert list((tmp_path / "layers").iterdir()) == []
