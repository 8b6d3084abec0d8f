// pyml.json's type lives with the rest of the image format; types only, so nothing of @pyml/image enters the
// runtime's bundle (the entrypoint reads pyml.json itself, from the unpacked image: model-host.ts).
export type { PymlManifest, PartRecord, DependencyEntry } from '@pyml/image/pyml-format';
