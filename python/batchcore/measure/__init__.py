"""How things are measured, apart from what is measured: the timer policy (:mod:`.timing`, run by the
core), the named orders and run options (:mod:`.orders`), the machine's ceilings (:mod:`.probes`) and the
largest batch that fits (:mod:`.capacity`)."""
