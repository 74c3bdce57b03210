"""nskit: the kernel's vocabulary, below everything else. Standard library only.

    errors.py    the error family every package subclasses; ExitStatus; OpError.gone
    syscalls.py  unshare, setns, mount, umount2, pivot_root, sethostname, prctl; CLONE_*, MS_*
    netns.py     network namespaces: the /var/run/netns entry, nsfs checks, "is this my own netns?"
    names.py     link names and MAC addresses: what the kernel accepts

It imports nothing of ours, so ``backends``, ``netsetter``, ``runner`` and
``netsetter_cni`` can all stand on it. Nothing is imported here.
"""
