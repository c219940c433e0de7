"""Fits y = w * x + b by ridge regression (standard library only) and writes metrics.json."""

import argparse
import csv
import json

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, required=True, help="ridge penalty on the weight")
parser.add_argument("--data", required=True, help="CSV file with columns x and y")
args = parser.parse_args()

with open(args.data, newline="") as f:
    rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
n = len(rows)
mean_x = sum(x for x, _ in rows) / n
mean_y = sum(y for _, y in rows) / n
sxx = sum((x - mean_x) ** 2 for x, _ in rows)
sxy = sum((x - mean_x) * (y - mean_y) for x, y in rows)
w = sxy / (sxx + args.alpha)
b = mean_y - w * mean_x
mse = sum((w * x + b - y) ** 2 for x, y in rows) / n

metrics = {"alpha": args.alpha, "weight": round(w, 10), "bias": round(b, 10), "mse": round(mse, 10), "rows": n}
with open("metrics.json", "w") as f:
    json.dump(metrics, f, indent=2, sort_keys=True)
    f.write("\n")
print(f"trained on {n} rows: weight={w:.4f} bias={b:.4f} mse={mse:.4f}")
