"""What a sweep produces: a point's record and :class:`~.sweep_result.SweepResult` with its files
(:mod:`.sweep_result`), the metrics on output bits (:mod:`.numerics`), and the decisions drawn from measured
points with their certainty (:mod:`.decisions`: best batch, knee, compare)."""
