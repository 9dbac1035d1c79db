"""Dedup index benchmark (framesift_dev.indexbench, so that an installed framesift runs it too:
``framesift bench index [--json]``)."""

from framesift_dev.indexbench import main

if __name__ == "__main__":
    main()
