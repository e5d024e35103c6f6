"""What is run: a chain of layers (:mod:`.chain`: ``bc.mlp``, ``bc.Model``), a graph of operations over N-D
samples (:mod:`.graph`: ``bc.GraphModel``), and a framework's module run as it is (:mod:`.opaque`). Plain
data: what a backend builds from a model (the core's packed copy, a torch module on a device) is cached by
that backend, never stored here."""
