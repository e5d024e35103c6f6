"""A small CNN trained on scikit-learn's digits, then swept: does the batch size change its predictions?

    python examples/digits_cnn.py            # about half a minute on 2 cores
    python examples/digits_cnn.py --quick    # CI smoke
"""

import torch
from digits_common import digits, parse_args, sweep_and_print, train

args = parse_args(__doc__)
x_tr, y_tr, x_te, y_te = digits()
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),  # 16 x 4 x 4
    torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),  # 32 x 2 x 2
    torch.nn.Flatten(), torch.nn.Linear(128, 10),
)
seconds = train(net, x_tr, y_tr, epochs=2 if args.quick else 15)
sweep_and_print(net, x_te, y_te, args.quick, args.out, seconds)
