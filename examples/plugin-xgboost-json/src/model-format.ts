/**
 * XGBoost's JSON model format (`Booster.save_model('model.json')`, XGBoost 1.0 and later), read into flat arrays
 * that are quick to walk. Only what prediction needs is kept; anything this evaluator cannot reproduce exactly
 * (categorical splits, DART, linear boosters, vector leaves, unknown objectives) is refused with the reason.
 */

/** How margins become outputs, by XGBoost objective name. */
export const OBJECTIVES = {
  'reg:squarederror': 'identity', 'reg:linear': 'identity', 'reg:absoluteerror': 'identity', 'reg:pseudohubererror': 'identity',
  'reg:logistic': 'sigmoid', 'binary:logistic': 'sigmoid', 'binary:logitraw': 'identity',
  'multi:softprob': 'softmax', 'multi:softmax': 'softmax',
  'count:poisson': 'exp', 'reg:gamma': 'exp', 'reg:tweedie': 'exp',
} as const;
export type Objective = keyof typeof OBJECTIVES;
export type Link = (typeof OBJECTIVES)[Objective];

/** One regression tree. Node i is a leaf when left[i] === -1; its value is then threshold[i]. */
export interface Tree {
  /** Output group (class) the tree adds to: tree_info[i]. */
  group: number;
  left: Int32Array;
  right: Int32Array;
  feature: Int32Array;
  /** Split value (float32, as XGBoost compares) or leaf value. */
  threshold: Float32Array;
  /** Where a missing (NaN) feature goes. */
  defaultLeft: Uint8Array;
}

export interface Ensemble {
  objective: Objective;
  link: Link;
  numFeature: number;
  /** Output groups: the number of classes for multi:*, else 1. */
  numGroup: number;
  /** Margin every group starts from (base_score mapped to margin space, as XGBoost's ProbToMargin). */
  baseMargin: number;
  featureNames: string[];
  trees: Tree[];
  /** XGBoost version that wrote the file. */
  version: string;
}

/** A file that is XGBoost JSON but that this evaluator cannot serve; the message says which field and why. */
export class XgboostFormatError extends Error {
  override name = 'XgboostFormatError';
}

type Json = Record<string, unknown>;

const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v.replace(/^\[|\]$/g, '')) : NaN);

function field<T>(obj: unknown, key: string, where: string): T {
  if (typeof obj !== 'object' || obj === null || !(key in obj)) throw new XgboostFormatError(`${where}.${key} is missing`);
  return (obj as Json)[key] as T;
}

function numberArray(tree: Json, key: string, n: number, where: string): number[] {
  const v = field<unknown>(tree, key, where);
  if (!Array.isArray(v) || v.length !== n) throw new XgboostFormatError(`${where}.${key} must be an array of ${n} numbers`);
  return v.map((x) => (typeof x === 'boolean' ? Number(x) : Number(x)));
}

/** True when the parsed JSON looks like an XGBoost model (a `learner` with a `gradient_booster`). */
export function looksLikeXgboost(json: unknown): boolean {
  return typeof json === 'object' && json !== null && typeof (json as Json).learner === 'object'
    && typeof ((json as Json).learner as Json)?.gradient_booster === 'object';
}

export function readEnsemble(json: unknown, file: string): Ensemble {
  if (!looksLikeXgboost(json)) throw new XgboostFormatError(`${file}: not an XGBoost JSON model (no learner.gradient_booster)`);
  const learner = (json as Json).learner as Json;
  const version = Array.isArray((json as Json).version) ? ((json as Json).version as number[]).join('.') : 'unknown';
  const booster = learner.gradient_booster as Json;
  if (booster.name !== 'gbtree') {
    throw new XgboostFormatError(`${file}: learner.gradient_booster.name is "${String(booster.name)}"; only "gbtree" is supported (not dart or gblinear)`);
  }
  const objectiveName = String(field<Json>(learner, 'objective', 'learner').name);
  if (!(objectiveName in OBJECTIVES)) {
    throw new XgboostFormatError(`${file}: learner.objective.name "${objectiveName}" is not supported (supported: ${Object.keys(OBJECTIVES).join(', ')})`);
  }
  const objective = objectiveName as Objective;
  const params = field<Json>(learner, 'learner_model_param', 'learner');
  const numFeature = num(params.num_feature);
  const numClass = num(params.num_class ?? 0);
  const numTarget = num(params.num_target ?? 1);
  if (!Number.isInteger(numFeature) || numFeature < 1) throw new XgboostFormatError(`${file}: learner.learner_model_param.num_feature must be a positive integer, got ${String(params.num_feature)}`);
  if (numTarget !== 1) throw new XgboostFormatError(`${file}: num_target is ${numTarget}; multi-target models are not supported`);
  const numGroup = Math.max(1, numClass);
  const baseScore = num(params.base_score);
  if (!Number.isFinite(baseScore)) throw new XgboostFormatError(`${file}: learner.learner_model_param.base_score is not a number: ${String(params.base_score)}`);
  const link = OBJECTIVES[objective];
  // base_score is stored in output space; margins start from its inverse link (XGBoost's ProbToMargin).
  const baseMargin = link === 'sigmoid' ? -Math.log(1 / baseScore - 1) : link === 'exp' ? Math.log(baseScore) : baseScore;

  const model = field<Json>(booster, 'model', 'learner.gradient_booster');
  const treesJson = field<Json[]>(model, 'trees', 'learner.gradient_booster.model');
  const treeInfo = field<number[]>(model, 'tree_info', 'learner.gradient_booster.model');
  if (!Array.isArray(treesJson) || !Array.isArray(treeInfo) || treesJson.length !== treeInfo.length) {
    throw new XgboostFormatError(`${file}: learner.gradient_booster.model: trees and tree_info must be arrays of the same length`);
  }
  const trees = treesJson.map((t, i) => readTree(t, treeInfo[i]!, numFeature, numGroup, `${file}: trees[${i}]`));
  const featureNames = Array.isArray(learner.feature_names) && learner.feature_names.length === numFeature ? (learner.feature_names as string[]) : [];
  return { objective, link, numFeature, numGroup, baseMargin, featureNames, trees, version };
}

function readTree(t: Json, group: number, numFeature: number, numGroup: number, where: string): Tree {
  const n = num(field<Json>(t, 'tree_param', where).num_nodes);
  if (!Number.isInteger(n) || n < 1) throw new XgboostFormatError(`${where}.tree_param.num_nodes must be a positive integer`);
  if (num((t.tree_param as Json).size_leaf_vector ?? 0) > 1) throw new XgboostFormatError(`${where}: vector leaves are not supported`);
  if (!Number.isInteger(group) || group < 0 || group >= numGroup) throw new XgboostFormatError(`${where}: tree_info ${group} is not a group below ${numGroup}`);
  const left = Int32Array.from(numberArray(t, 'left_children', n, where));
  const right = Int32Array.from(numberArray(t, 'right_children', n, where));
  const feature = Int32Array.from(numberArray(t, 'split_indices', n, where));
  const threshold = Float32Array.from(numberArray(t, 'split_conditions', n, where));
  const defaultLeft = Uint8Array.from(numberArray(t, 'default_left', n, where));
  const splitType = Array.isArray(t.split_type) ? (t.split_type as number[]) : [];
  for (let i = 0; i < n; i++) {
    if (left[i] === -1) continue;
    if (splitType[i]) throw new XgboostFormatError(`${where}: node ${i} is a categorical split; categorical features are not supported`);
    if (!(left[i]! > i && left[i]! < n && right[i]! > i && right[i]! < n)) throw new XgboostFormatError(`${where}: node ${i} has children ${left[i]}, ${right[i]} outside the tree (${n} nodes)`);
    if (feature[i]! < 0 || feature[i]! >= numFeature) throw new XgboostFormatError(`${where}: node ${i} splits on feature ${feature[i]}, but the model has ${numFeature}`);
  }
  return { group, left, right, feature, threshold, defaultLeft };
}
