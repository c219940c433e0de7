"""Train an ElasticNet model as MLflow's own tutorial does, on scikit-learn's bundled
diabetes data (no download), and log it with mlflow.

Under `lockstep run --tracking-uri ...` (or MLFLOW_TRACKING_URI), mlflow.start_run() resumes
the run lockstep created, so these params, metrics and artifacts land in the same run as
lockstep's tags and record.
"""

import argparse
import json
import os

import mlflow
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--l1-ratio", type=float, default=0.1)
    args = parser.parse_args()

    x, y = load_diabetes(return_X_y=True)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.25, random_state=42)

    with mlflow.start_run():
        model = ElasticNet(alpha=args.alpha, l1_ratio=args.l1_ratio, random_state=42)
        model.fit(train_x, train_y)
        predicted = model.predict(test_x)
        rmse = float(np.sqrt(mean_squared_error(test_y, predicted)))
        mae = float(mean_absolute_error(test_y, predicted))
        r2 = float(r2_score(test_y, predicted))
        print(f"ElasticNet(alpha={args.alpha}, l1_ratio={args.l1_ratio}): rmse={rmse:.3f} mae={mae:.3f} r2={r2:.3f}")

        mlflow.log_param("model", "ElasticNet")
        mlflow.log_metrics({"rmse": rmse, "r2": r2, "mae": mae})
        os.makedirs("model", exist_ok=True)
        with open("model/coefficients.json", "w") as f:
            json.dump({"intercept": float(model.intercept_), "coef": [float(c) for c in model.coef_]}, f, indent=2)
        mlflow.log_artifact("model/coefficients.json", artifact_path="model")


if __name__ == "__main__":
    main()
