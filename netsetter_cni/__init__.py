"""netsetter as a CNI plugin: podman, containerd and Kubernetes nodes put containers on a bridge with it.

A runtime (podman, containerd, the kubelet's CRI) creates the container's
network namespace, then runs the plugin named by the network's "type", once
per command, with the parameters in CNI_* variables and the network's JSON on
stdin (the CNI spec, containernetworking/cni SPEC.md):

    main.py      the executable: VERSION at once; else parse, run, print the result or the error
    args.py      CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS
    config.py    the network configuration: bridge, isGateway, isDefaultGateway, ipMasq, mtu, ipam
    commands.py  opens a backend and runs one of:
      add.py     bridge, lease, gateway, veth pair into the netns, address and routes, NAT; undone on failure
      delete.py  the pair, the lease, the NAT rules; anything already gone is fine
      check.py   the bridge, both ends, the address and the routes against prevResult
    result.py    the result JSON in the forms of 1.0.0, 0.4.0 and 0.3.x
    errors.py    the spec's error JSON and its codes
    version.py   the spec versions spoken, and the VERSION answer
    netns.py     CNI_NETNS checked, and held by an fd the backends reach it through
    links.py     the bridge's MAC (the undo stack: nskit.undo; removals: netsetter.host.links)

Nothing is imported here: ``netsetter-cni`` VERSION must start fast.
"""
