"""Fits an elastic net to scikit-learn's bundled diabetes data set and writes metrics.json."""

import argparse
import json

import sklearn
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=0.01)
parser.add_argument("--l1-ratio", type=float, default=0.5)
args = parser.parse_args()

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=42)
model = ElasticNet(alpha=args.alpha, l1_ratio=args.l1_ratio, random_state=42).fit(X_train, y_train)
predicted = model.predict(X_test)
rmse = mean_squared_error(y_test, predicted) ** 0.5
r2 = r2_score(y_test, predicted)

metrics = {
    "alpha": args.alpha,
    "l1_ratio": args.l1_ratio,
    "rmse": round(rmse, 6),
    "r2": round(r2, 6),
    "rows": len(X),
    "sklearn": sklearn.__version__,
}
with open("metrics.json", "w") as f:
    json.dump(metrics, f, indent=2, sort_keys=True)
    f.write("\n")
print(f"alpha={args.alpha} l1_ratio={args.l1_ratio} rmse={rmse:.4f} r2={r2:.4f}")
