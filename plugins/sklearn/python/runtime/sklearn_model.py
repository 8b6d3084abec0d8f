"""The sklearn plugin's Python runtime: the pickled estimator or Pipeline itself, run by the image's scikit-learn
(Debian's python3-sklearn, the one that unpickled it at build time), so its results are scikit-learn's exactly.

The frame arrives with one column per signature input, in the order the model was fitted on; a model fitted on a
DataFrame gets a DataFrame with those names, one fitted on an array gets the array.
"""
import os

import pyml

from sklearn_outputs import output_columns, predict_columns

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


class SklearnPickle(pyml.DataFrameModel):
    def init(self, ctx):
        pickles = sorted(n for n in os.listdir(ctx.weights_dir) if n.lower().endswith(PICKLE_SUFFIXES))
        if len(pickles) != 1:
            raise RuntimeError(f"sklearn: expected one pickle in {ctx.weights_dir}, found {len(pickles)}: {', '.join(pickles) or 'none'}")
        import joblib
        self.model = joblib.load(ctx.weights_path(pickles[0]))
        self.columns = [spec.name for spec in ctx.signature.inputs]
        self.outputs = output_columns(self.model)
        declared = [spec.name for spec in ctx.signature.outputs]
        if declared != [name for name, _ in self.outputs]:
            raise RuntimeError(f"sklearn: {pickles[0]} gives columns {[n for n, _ in self.outputs]}, the image's signature says {declared}")
        self.named = hasattr(self.model, "feature_names_in_")

    def predict(self, df):
        frame = df[self.columns]
        return predict_columns(self.model, frame if self.named else frame.to_numpy(), self.outputs)
