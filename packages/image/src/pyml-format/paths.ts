/** Where pyml puts things inside an image. Paths in `pyml.json` are relative to PYML_ROOT. */
export const PYML_ROOT = '/opt/pyml';
export const MANIFEST_PATH = `${PYML_ROOT}/pyml.json`;
export const RUNTIME_DIR = `${PYML_ROOT}/runtime`;
export const ENTRYPOINT_PATH = `${RUNTIME_DIR}/entrypoint.mjs`;
export const MODEL_DIR = `${PYML_ROOT}/model`;
export const WEIGHTS_DIR = `${PYML_ROOT}/weights`;
export const ADAPTERS_DIR = `${PYML_ROOT}/adapters`;
/** The socket the entrypoint's `serve` listens on by default (the image's Cmd). */
export const DEFAULT_SOCKET = '/run/pyml/model.sock';
