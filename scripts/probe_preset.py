"""Short probe runs of a preset: is every layer active, and does the rule keep it so?

    python scripts/probe_preset.py cifar10-conv-cpu --rule microcircuit
    python scripts/probe_preset.py cifar10-conv-cpu --rule bp --set weight_scale=1 lr=3e-3 lr_schedule=constant warmup=0.1

Trains on the first ``--train`` images of the training set for ``--epochs`` epochs and
after each prints the accuracy on the first ``--train-eval`` of those training images (so
that underfitting shows: training against validation accuracy), the validation accuracy on
the last ``--val`` training images (never the test set), and per plastic layer, input side
first, over the last evaluation batch (up to 1,000 validation images): the mean rate, the
fraction of cells silent on every one of them, and the mean surrogate gain; with
``threshold_adaptation`` on, each hidden layer's mean firing threshold too (the output
layer keeps the shared ``theta``). A layer whose gain falls towards 0 has saturated or fallen
silent; no error reaches it any more. This is how the CIFAR-10 presets' ``weight_scale``
was chosen (see ``docs/decisions.md``).
"""

import argparse
import ast
import time

from microcircuit import Network, data, presets
from microcircuit.config import is_dense
from microcircuit.rules import RUN_RULES


def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def layer_stats(net):
    """Mean rate, fraction of always-silent cells and mean surrogate gain per plastic layer."""
    rates, silent, gains = [], [], []
    for layer in net.plastic_layers:
        r = layer.r.reshape(layer.r.shape[0], -1)
        rates.append(float(r.mean()))
        silent.append(float((r.max(axis=0) == 0).mean()))
        gains.append(float(layer.g.mean()))
    return rates, silent, gains


def thresholds(net):
    """Mean firing threshold per hidden plastic layer (per-cell thresholds, intrinsic plasticity)."""
    return [float(layer.theta.mean()) for layer in net.adapting_layers]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset")
    parser.add_argument("--rule", default="microcircuit", choices=RUN_RULES)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override Network settings")
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--val", type=int, default=2000)
    parser.add_argument("--train-eval", type=int, default=2000, help="training images evaluated after each epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the dataset's count and checksum check (a subset, e.g. carried to a GPU machine)")
    args = parser.parse_args()

    dataset, _, settings = presets.run_settings(args.preset, args.rule, seed=args.seed)
    for item in args.set:
        key, _, text = item.partition("=")
        settings[key] = _value(text)
    flatten = is_dense(settings["layers"])
    x, y = data.load_dataset(dataset, "train", flatten=flatten, verify=not args.no_verify)
    if args.train + args.val > x.shape[0]:
        raise SystemExit(f"--train + --val must be at most {x.shape[0]}")
    xv, yv = x[-args.val:], y[-args.val:]
    x, y = x[: args.train], y[: args.train]
    net = Network(epochs=args.epochs, **settings)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        loss = net.partial_fit(x, y)
        n = min(args.train_eval, args.train)
        train_acc = net.evaluate(x[:n], y[:n], batch_size=1000)["accuracy"]
        acc = net.evaluate(xv, yv, batch_size=1000)["accuracy"]  # the layers keep the last batch's rates and gains
        rates, silent, gains = layer_stats(net)
        fmt = lambda v: " ".join(f"{a:.3f}" for a in v)  # noqa: E731
        theta = thresholds(net)
        shown = f"\n  threshold {fmt(theta)} (output: {net.config.theta:g})" if theta else ""
        print(f"epoch {epoch}: train loss {loss:.3f}, accuracy on {n} training images {100 * train_acc:.1f} %, "
              f"validation {100 * acc:.1f} %, {time.perf_counter() - start:.0f} s\n  rate {fmt(rates)}\n"
              f"  silent {fmt(silent)}\n  gain {fmt(gains)}{shown}", flush=True)


if __name__ == "__main__":
    main()
