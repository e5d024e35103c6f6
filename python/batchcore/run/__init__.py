"""Running a sweep: plan it as independent cells (:mod:`.plan`), the work per kind of model
(:mod:`.workloads`), and the pipeline that runs the cells in this process and records each point
(:mod:`.sweep`)."""
