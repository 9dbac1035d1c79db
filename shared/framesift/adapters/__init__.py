"""One adapter per backend for each port in :mod:`framesift.ports`."""
