"""What ns-proc is measured against, where it takes more than one command line:
a bash container pipeline (unshare + pivot_root + netsetter.sh) and a Mininet driver."""
