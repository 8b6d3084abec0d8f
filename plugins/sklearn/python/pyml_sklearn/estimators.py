"""The pipeline's final estimator: a double [N, k] feature matrix in, the dataframe's result columns out."""
import numpy as np
from onnx import TensorProto

from .graph import Unsupported
from .mlp import mlp
from .neighbors import kneighbors
from .outputs import binary_from_p1, classifier_outputs, label_output, linear_scores, regressor_output
from .svm import svc, svr
from .trees import forest, gradient_boosting, hist_gradient_boosting

# Regressors whose predict is X @ coef_ + intercept_.
LINEAR_REGRESSORS = {"LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
                     "Lars", "LarsCV", "LassoLars", "LassoLarsCV", "LassoLarsIC", "BayesianRidge", "ARDRegression",
                     "HuberRegressor", "SGDRegressor", "OrthogonalMatchingPursuit", "LinearSVR", "TheilSenRegressor"}


def linear_regressor(est, g, x, outs):
    coef = np.asarray(est.coef_, dtype=np.float64)
    if coef.ndim != 1 and coef.shape[0] != 1:
        raise Unsupported(type(est).__name__, "several targets")
    regressor_output(g, linear_scores(g, x, coef.reshape(1, -1), np.atleast_1d(est.intercept_)), outs)


def logistic_regression(est, g, x, outs):
    scores = linear_scores(g, x, est.coef_, est.intercept_)
    k = len(est.classes_)
    ovr = est.multi_class in ("ovr", "warn") or (est.multi_class == "auto" and (k <= 2 or est.solver == "liblinear"))
    if k == 2:
        proba = binary_from_p1(g, g.node("Sigmoid", [scores]))
    elif ovr:
        p = g.node("Sigmoid", [scores])
        proba = g.node("Div", [p, g.node("ReduceSum", [p, g.i64([1])], keepdims=1)], base="proba")
    else:
        proba = g.node("Softmax", [scores], axis=1, base="proba")
    classifier_outputs(g, proba, est.classes_, outs)


def linear_classifier_labels(est, g, x, outs):
    """LinearSVC, RidgeClassifier: label from the decision function, no probabilities."""
    scores = linear_scores(g, x, est.coef_, est.intercept_)
    if len(est.classes_) == 2:
        idx = g.cast(g.node("Reshape", [g.node("Greater", [scores, g.f64([0.0])]), g.i64([-1])]), TensorProto.INT64)
    else:
        idx = g.node("ArgMax", [scores], axis=1, keepdims=0)
    label_output(g, idx, est.classes_, outs)


ESTIMATORS = {
    "LogisticRegression": logistic_regression,
    "LinearSVC": linear_classifier_labels,
    "RidgeClassifier": linear_classifier_labels,
    "DecisionTreeClassifier": lambda e, g, x, o: forest(e, g, x, o, True),
    "RandomForestClassifier": lambda e, g, x, o: forest(e, g, x, o, True),
    "ExtraTreesClassifier": lambda e, g, x, o: forest(e, g, x, o, True),
    "ExtraTreeClassifier": lambda e, g, x, o: forest(e, g, x, o, True),
    "DecisionTreeRegressor": lambda e, g, x, o: forest(e, g, x, o, False),
    "RandomForestRegressor": lambda e, g, x, o: forest(e, g, x, o, False),
    "ExtraTreesRegressor": lambda e, g, x, o: forest(e, g, x, o, False),
    "ExtraTreeRegressor": lambda e, g, x, o: forest(e, g, x, o, False),
    "GradientBoostingClassifier": lambda e, g, x, o: gradient_boosting(e, g, x, o, True),
    "GradientBoostingRegressor": lambda e, g, x, o: gradient_boosting(e, g, x, o, False),
    "HistGradientBoostingClassifier": lambda e, g, x, o: hist_gradient_boosting(e, g, x, o, True),
    "HistGradientBoostingRegressor": lambda e, g, x, o: hist_gradient_boosting(e, g, x, o, False),
    "SVC": svc, "NuSVC": svc, "SVR": svr, "NuSVR": svr,
    "KNeighborsClassifier": lambda e, g, x, o: kneighbors(e, g, x, o, True),
    "KNeighborsRegressor": lambda e, g, x, o: kneighbors(e, g, x, o, False),
    "MLPClassifier": lambda e, g, x, o: mlp(e, g, x, o, True),
    "MLPRegressor": lambda e, g, x, o: mlp(e, g, x, o, False),
}
for _name in LINEAR_REGRESSORS:
    ESTIMATORS[_name] = linear_regressor


def is_estimator(obj):
    return hasattr(obj, "predict")


def convert_estimator(est, g, x, outs):
    fn = ESTIMATORS.get(type(est).__name__)
    if fn is None or not type(est).__module__.startswith("sklearn."):
        raise Unsupported(type(est).__name__)
    fn(est, g, x, outs)


SUPPORTED_STEPS = "Pipeline, ColumnTransformer, StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler, " \
                  "SimpleImputer, OneHotEncoder, OrdinalEncoder, PolynomialFeatures"


def supported_estimators():
    return ", ".join(sorted(ESTIMATORS))
