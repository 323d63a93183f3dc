"""Stand-in for mpi4py (the official distributed launcher; unused at inference)."""

from types import SimpleNamespace

MPI = SimpleNamespace(COMM_WORLD=SimpleNamespace(bcast=lambda value, root=0: value))
