"""An independent reference for the xgboost-json plugin: walks an XGBoost JSON model's trees in plain Python
(standard library only, no xgboost, none of the plugin's TypeScript).

    python3 walk_trees.py MODEL.json < {"inputs": [[f0, f1, ...], ...]}  (null = missing)
    → {"outputs": [[...], ...]}   softmax probabilities, sigmoid probability or raw prediction per row

Features and split values are compared as float32, as XGBoost does: go left when x < split, a missing value
takes the node's default direction.
"""
import json
import math
import struct
import sys


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def main():
    model = json.load(open(sys.argv[1]))
    learner = model["learner"]
    objective = learner["objective"]["name"]
    params = learner["learner_model_param"]
    base = float(str(params["base_score"]).strip("[]"))
    groups = max(1, int(params.get("num_class", "0")))
    gb = learner["gradient_booster"]["model"]
    trees, info = gb["trees"], gb["tree_info"]
    if objective in ("binary:logistic", "reg:logistic"):
        base = -math.log(1 / base - 1)
    rows = json.load(sys.stdin)["inputs"]
    out = []
    for row in rows:
        x = [None if v is None else f32(v) for v in row]
        margin = [base] * groups
        for tree, group in zip(trees, info):
            node = 0
            while tree["left_children"][node] != -1:
                v = x[tree["split_indices"][node]]
                if v is None:
                    go_left = bool(tree["default_left"][node])
                else:
                    go_left = v < f32(tree["split_conditions"][node])
                node = tree["left_children"][node] if go_left else tree["right_children"][node]
            margin[group] += f32(tree["split_conditions"][node])
        if objective.startswith("multi:"):
            m = max(margin)
            e = [math.exp(v - m) for v in margin]
            out.append([v / sum(e) for v in e])
        elif objective in ("binary:logistic", "reg:logistic"):
            out.append([1 / (1 + math.exp(-margin[0]))])
        else:
            out.append([margin[0]])
    json.dump({"outputs": out}, sys.stdout)


main()
