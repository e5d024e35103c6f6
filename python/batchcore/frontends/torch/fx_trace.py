"""Reading a torch module into a :class:`~batchcore.model.graph.GraphModel` through ``torch.fx``.

The module is traced symbolically (its ``forward`` as written: residual connections, custom code; torch's
own modules stay whole), then run on batches of 2 and 3 samples to learn every value's shape. A value
that depends on the input but does not keep the batch as its first dimension would mix samples: it is
refused. Values that do not depend on the input's data (parameters used directly, arithmetic on them,
positions made from its shape) are taken from that run and become constants. Each remaining node maps to
operations of the core's graph (:mod:`.fx_ops`, :mod:`.fx_composites`), or raises
UnsupportedLayerError naming the node, its operation and the line of the user's code it comes from.
"""

from __future__ import annotations

from typing import Any

from ...errors import UnsupportedLayerError
from ...model.graph import GraphModel, GraphNode
from . import fx_composites
from .fx_ops import FxReader

# The element-wise arithmetic fx records (operator.add for `a + b`, torch.add, Tensor.add, in place or not).
_BINARY = {"add": "add", "iadd": "add", "sub": "sub", "isub": "sub", "mul": "mul", "imul": "mul", "div": "div",
           "truediv": "div", "itruediv": "div", "true_divide": "div"}


def _fold(torch: Any, gm: Any, node: Any, consts: dict[Any, Any]) -> Any:
    """The value of a node none of whose operands depend on the input, computed with torch."""
    args = torch.fx.node.map_arg(node.args, lambda n: consts[n])
    kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: consts[n])
    with torch.no_grad():
        if node.op == "get_attr":
            value: Any = gm
            for part in node.target.split("."):
                value = getattr(value, part)
            return value
        if node.op == "call_module":
            return gm.get_submodule(node.target)(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        return getattr(args[0], node.target)(*args[1:], **kwargs)


def _trace_run(torch: Any, gm: Any, x: Any) -> dict[Any, Any]:
    """Every node's value on the input x."""
    values: dict[Any, Any] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: Any) -> Any:
            values[n] = super().run_node(n)
            return values[n]

    with torch.no_grad():
        Recorder(gm).run(x)
    return values


def _shapes(torch: Any, gm: Any, input_shape: tuple[int, ...], dtype: Any) -> tuple[dict[Any, Any], dict[Any, Any],
                                                                                    dict[int, dict[Any, Any]]]:
    """(sample shapes of the tensors whose first dimension is the batch, values of the others, every node's
    value per batch size) from runs at B = 2 and 3 (token ids: zeros; numbers: standard normal)."""
    runs = {}
    for B in (2, 3):
        x = torch.zeros((B, *input_shape), dtype=dtype) if dtype == torch.int64 else torch.randn((B, *input_shape))
        runs[B] = _trace_run(torch, gm, x)
    shapes: dict[Any, tuple[int, ...]] = {}
    fixed: dict[Any, Any] = {}
    for n in gm.graph.nodes:
        v2, v3 = runs[2].get(n), runs[3].get(n)
        if not isinstance(v2, torch.Tensor) or not isinstance(v3, torch.Tensor):
            continue
        s2, s3 = tuple(v2.shape), tuple(v3.shape)
        if s2[:1] == (2,) and s3[:1] == (3,) and s2[1:] == s3[1:]:
            shapes[n] = s2[1:]
        elif s2 == s3:
            fixed[n] = v2
    return shapes, fixed, runs


def _one_per_sample(torch: Any, runs: dict[int, dict[Any, Any]], node: Any) -> Any:
    """A value made from the input's shape alone (positions, a mask) that is batch-first and the same for
    every sample at B = 2 and 3: one sample of it (a constant), else None."""
    v2, v3 = runs[2].get(node), runs[3].get(node)
    if not isinstance(v2, torch.Tensor) or not isinstance(v3, torch.Tensor) or v2.dim() == 0 or v3.dim() == 0:
        return None
    if v2.shape[0] != 2 or v3.shape[0] != 3 or v2.shape[1:] != v3.shape[1:]:
        return None
    first = v2[0]
    return first if all(torch.equal(first, v[i]) for v in (v2, v3) for i in range(v.shape[0])) else None


def graph_from_torch(module: Any, input_shape: tuple[int, ...], name: str, input_dtype: str = "float32") -> GraphModel:
    """Read ``module`` (float32 parameters, any ``forward`` torch.fx can trace, one input tensor whose samples
    have ``input_shape``: float32 numbers, or int64 token ids) into a GraphModel; see the module's docstring.
    A module torch.fx cannot trace (a Hugging Face model) is captured by ``torch.export`` instead and its
    aten operations read (:mod:`.export_trace`)."""
    import torch

    tracer = torch.fx.Tracer()
    tracer.record_stack_traces = True
    root = module
    if type(module).__module__.startswith("torch.nn") and not isinstance(module, torch.nn.Sequential):
        root = torch.nn.Sequential(module)  # one of torch's own modules, read whole as its child (fx keeps it)
    try:
        traced = tracer.trace(root)
    except Exception as e:
        from .export_trace import exported_graph

        fx_reason = f"torch.fx cannot trace {name} ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]})"
        gm, reader_class = exported_graph(torch, module, input_shape, name, input_dtype, fx_reason)
        return read_graph(torch, gm, module, input_shape, name, input_dtype, reader_class)
    return read_graph(torch, torch.fx.GraphModule(tracer.root, traced), module, input_shape, name, input_dtype,
                      ModuleReader)


def read_graph(torch: Any, gm: Any, module: Any, input_shape: tuple[int, ...], name: str, input_dtype: str,
               reader_class: type[FxReader]) -> GraphModel:
    """The GraphModel of a traced graph ``gm`` of ``module``, its nodes read in order by ``reader_class``."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedLayerError(f"{name}.forward takes {len(placeholders)} inputs; a native graph takes one tensor")
    was_training = module.training
    module.eval()
    try:
        shapes, fixed, runs = _shapes(torch, gm, input_shape, getattr(torch, input_dtype))
    except Exception as e:
        cause = e.__cause__ or e  # the Interpreter wraps the module's own error in a page of graph context
        first = (str(cause).strip().splitlines() or [""])[0]
        raise UnsupportedLayerError(f"{name} fails on a batch of samples of shape {input_shape} ({input_dtype}): "
                                    f"{type(cause).__name__}: {first}") from e
    finally:
        module.train(was_training)
    shapes[placeholders[0]] = tuple(input_shape)
    reader = reader_class(torch, gm, shapes)
    reader.nodes.append(GraphNode("input", (), {}, tuple(input_shape), placeholders[0].name, "the input"))
    output = None
    shape_reads: set[Any] = set()  # x.size(...) and arithmetic on it: what a reshape or position ids were made of
    for node in gm.graph.nodes:
        reader.node = node
        on_data = any(n in reader.ids or n in reader.tuples or n in reader.merged for n in node.all_input_nodes)
        on_shape = any(n in shape_reads for n in node.all_input_nodes)
        if node.op == "placeholder":
            reader.ids[node] = 0
        elif node.op == "output":
            result = node.args[0]
            if isinstance(result, (tuple, list)) and len(result) == 1:  # an exported graph's outputs, flattened
                result = result[0]
            if not isinstance(result, torch.fx.Node) or result not in reader.ids:
                raise reader.refuse("a native graph returns one tensor that depends on the input")
            output = reader.ids[result]
        elif not node.users:  # nothing reads it (an exported graph's guards and metadata checks)
            continue
        elif not on_data and not on_shape:
            reader.consts[node] = _fold(torch, gm, node, reader.consts)
        elif not on_data:  # made from the input's shape alone: the same for every batch, a constant
            if node in fixed:
                reader.consts[node] = fixed[node]
            elif (sample := _one_per_sample(torch, runs, node)) is not None:
                reader.consts[node] = sample  # positions or a mask: one sample's, broadcast over the batch
            else:
                shape_reads.add(node)
        elif _is_recurrent(torch, reader, node):
            raise reader.refuse(f"{type(gm.get_submodule(node.target)).__name__} is a recurrent layer (each step's "
                                "state feeds the next), which the native graph does not read yet; the torch backends "
                                "run the module as it is (backends=[bc.torch()])")
        elif _reads_a_tuple(reader, node):
            continue
        elif node in shapes or reader.makes_a_tuple(node):
            if node in shapes:
                reader.ids[node] = reader.read_node(node)
        elif reader.is_shape_read(node):
            shape_reads.add(node)
        elif reader.reads_merged_rows(node, runs):
            continue
        else:
            raise reader.refuse("its result depends on the input but does not keep the batch as its first dimension "
                                "(it would mix samples)")
    if output is None:  # pragma: no cover - every traced graph ends in an output node
        raise UnsupportedLayerError(f"{name} has no output")
    if output == 0:
        raise UnsupportedLayerError(f"{name} returns its input unchanged: there is nothing to run")
    return GraphModel(reader.nodes, output, source_module=module, name=name, input_dtype=input_dtype,
                      source_framework="torch")


def _is_recurrent(torch: Any, reader: FxReader, node: Any) -> bool:
    return node.op == "call_module" and isinstance(reader.gm.get_submodule(node.target),
                                                  (torch.nn.RNNBase, torch.nn.RNNCellBase))


def _reads_a_tuple(reader: FxReader, node: Any) -> bool:
    """``attn(x, x, x)[0]``: the item of a tuple read by _makes_a_tuple."""
    if node.op != "call_function" or getattr(node.target, "__name__", "") != "getitem" or node.args[0] not in reader.tuples:
        return False
    item = reader.tuples[node.args[0]][node.args[1]]
    if item is None and not node.users:  # unpacked and never used: `out, _ = attn(x, x, x)`
        return True
    if item is None:
        raise reader.refuse("the attention weights MultiheadAttention returns are not supported (only its output)")
    reader.ids[node] = item
    return True



class ModuleReader(FxReader):
    """The reader of a graph ``torch.fx`` traced from the module: torch's modules (call_module), functions and
    tensor methods by name."""

    def is_shape_read(self, node: Any) -> bool:
        return node.op == "call_method" and node.target == "size" or node.target is getattr

    def makes_a_tuple(self, node: Any) -> bool:
        """nn.MultiheadAttention returns (output, weights): its output is read, the weights refused when used."""
        torch = self.torch
        if node.op != "call_module" or not isinstance(self.gm.get_submodule(node.target), torch.nn.MultiheadAttention):
            return False
        m = self.gm.get_submodule(node.target)
        self.no_masks(3)
        q, k, v = (self.value(self.arg(i, name)) for i, name in enumerate(("query", "key", "value")))
        self.tuples[node] = [fx_composites.multihead_attention(self, m, q, k, v), None]
        return True

    def read_node(self, node: Any) -> int:
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
        if node.op != "call_module" and name in _BINARY:
            return self.binary(_BINARY[name], self.arg(0, "input"), self.arg(1, "other"), node.kwargs.get("alpha"))
        if node.op == "call_function" and name == "scaled_dot_product_attention":
            if self.arg(4, "dropout_p", 0.0) or self.arg(7, "enable_gqa"):
                raise self.refuse("scaled_dot_product_attention with dropout or enable_gqa is not supported")
            q, k, v = (self.value(self.arg(i, n)) for i, n in enumerate(("query", "key", "value")))
            return self.attention(q, k, v, self.arg(6, "scale"), self.arg(5, "is_causal", False), self.arg(3, "attn_mask"))
        first = node.args[0] if node.args else None
        if first not in self.ids:
            raise self.refuse("its first operand does not depend on the input")
        x = self.ids[first]
        if node.op == "call_module":
            m = self.gm.get_submodule(target)
            if isinstance(m, (self.torch.nn.TransformerEncoderLayer, self.torch.nn.TransformerEncoder)):
                self.no_masks(1)
                return (fx_composites.encoder_layer if isinstance(m, self.torch.nn.TransformerEncoderLayer)
                        else fx_composites.encoder)(self, m, x)
            return self.read_module(m, x)
        return self.read_call(name, x)
