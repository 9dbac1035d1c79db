"""Stage logic: plain, typed Python over the ports; the functions only parse events and call it."""
