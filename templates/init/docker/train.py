"""A starter entry point: fits y = w * x by ridge regression and writes metrics.json."""

import argparse
import json

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=0.5)
args = parser.parse_args()

xs = [float(i) for i in range(1, 11)]
ys = [2.0 * x + (0.1 if i % 2 else -0.1) for i, x in enumerate(xs)]
w = sum(x * y for x, y in zip(xs, ys)) / (sum(x * x for x in xs) + args.alpha)
mse = sum((w * x - y) ** 2 for x, y in zip(xs, ys)) / len(xs)

with open("metrics.json", "w") as f:
    json.dump({"alpha": args.alpha, "weight": round(w, 12), "mse": round(mse, 12)}, f, indent=2, sort_keys=True)
    f.write("\n")
print(f"alpha={args.alpha} weight={w:.6f} mse={mse:.6f}")
