"""Developer tools that never ship with a function: the local emulated stack (``framesift dev``)."""
