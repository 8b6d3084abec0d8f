/** @pyml/deploy: Kubernetes manifests for pyml images (the front and its model containers in one pod). */
export { resolveModelImage, resolveServeImage, type ModelImage, type OpenRemoteImage } from './model-image.ts';
export { kubernetesObjects, containerName, GRPC_PORT, HTTP_PORT, SOCKET_DIR, RUN_AS, type DeployOptions, type KubernetesObject, type Layout } from './kubernetes-manifests.ts';
export { readResourcesFile, checkResourcesFile, mergeResources, modelDefault, FRONT_DEFAULT, type ResourceRequirements, type ResourcesFile } from './resources.ts';
export { writeManifests, toYaml, type Format, type WrittenFile } from './write-manifests.ts';
export { parseImageName, requireDigestReference, digestReference, type ImageName } from './image-reference.ts';
