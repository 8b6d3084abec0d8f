/** @pyml/registry: OCI distribution client (push, pull) and Docker engine load/save. Imports @pyml/image only. */
export { parseReference, looksLikeRegistryRef, formatReference, registryBaseUrl, type ImageReference } from './reference.ts';
export { findCredentials, dockerConfigPath, type Credentials } from './docker-config.ts';
export { RegistryClient } from './registry-client.ts';
export { pushImage, pushAny, type IndexPushResult, type PushOptions, type PushResult, type PushedBlob, type BlobAction } from './push-image.ts';
export { pullImage, hostPlatform, parsePlatform, platformText, type PullOptions, type PullResult } from './pull-image.ts';
export { KnownBlobs } from './known-blobs.ts';
export { connectEngine, engineName, loadIntoEngine, saveFromEngine, type LoadResult } from './docker-engine.ts';
export { openAnyImage } from './open-any-image.ts';
export { DOCKER_DAEMON_PREFIX } from './reference.ts';
export { checkCredentials, registryHost, removeCredentials, saveCredentials, type LoginCheck, type RemovedCredentials, type SavedCredentials } from './login.ts';
export { layoutReferrers, listReferrers, pushReferrer, fallbackTag, type Referrer, type PushedReferrer } from './referrers.ts';
