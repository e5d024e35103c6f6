"""A small transformer classifier on scikit-learn's digits, each image read as a sequence of 8 tokens
(its rows of 8 pixels), then swept: does the batch size change its predictions?

    python examples/digits_transformer.py            # about half a minute on 2 cores
    python examples/digits_transformer.py --quick    # CI smoke
"""

import torch
from digits_common import digits, parse_args, sweep_and_print, train


class RowsAsTokens(torch.nn.Module):
    def __init__(self, d_model: int = 32, heads: int = 4, layers: int = 2):
        super().__init__()
        self.embed = torch.nn.Linear(8, d_model)
        self.position = torch.nn.Parameter(torch.zeros(8, d_model))
        layer = torch.nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = torch.nn.Linear(d_model, 10)

    def forward(self, images):
        tokens = self.embed(images[:, 0]) + self.position  # (B, 8 rows, d_model)
        return self.head(self.encoder(tokens).mean(1))


args = parse_args(__doc__)
x_tr, y_tr, x_te, y_te = digits()
torch.manual_seed(0)
net = RowsAsTokens()
seconds = train(net, x_tr, y_tr, epochs=2 if args.quick else 20)
sweep_and_print(net, x_te, y_te, args.quick, args.out, seconds)
