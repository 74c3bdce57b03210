"""Where netsetter keeps what must outlive one run: /run/ns-proc/net-<inode>/.

/run is a tmpfs: it starts empty at boot, as the kernel objects it describes
(links, namespaces) do. Everything lives in a folder of the host's network
namespace (named by its inode number), so that runs in different namespaces
(sandboxes, tests) never meet, and a sandbox removes its folder with itself.
"""

from __future__ import annotations

import os

RUN_DIR = "/run/ns-proc"


def host_netns_inode() -> int:
    """The network namespace this thread works in, as its inode number."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def host_dir(inode: int | None = None) -> str:
    return os.path.join(RUN_DIR, f"net-{host_netns_inode() if inode is None else inode}")


def path(*parts: str, inode: int | None = None) -> str:
    """A file under the host's folder; its parent folders are made as needed."""
    full = os.path.join(host_dir(inode), *parts)
    os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
    return full


def forget(inode: int) -> None:
    """Remove the folder of a host netns that is going away."""
    import shutil  # here: at the top it costs every CNI call its bz2/lzma imports

    shutil.rmtree(host_dir(inode), ignore_errors=True)
