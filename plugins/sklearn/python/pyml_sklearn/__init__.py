"""The converter's parts: graph.py (ONNX graph under construction, the dataframe's input columns, the feature
blocks passed between steps), steps.py (Pipeline, ColumnTransformer and preprocessing steps), estimators.py
(the final estimators) and the estimator families it dispatches to (linear, trees, svm, neighbors, mlp)."""
