/** Node's process.arch → the OCI architecture name (GOARCH), for the platforms Node and OCI both name. */
const OCI_ARCHITECTURE: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

export function ociArchitecture(nodeArch: string = process.arch): string {
  return OCI_ARCHITECTURE[nodeArch] ?? nodeArch;
}

/** This machine's platform as an OCI platform (pyml images are Linux images). */
export function hostPlatform(): { os: 'linux'; architecture: string } {
  return { os: 'linux', architecture: ociArchitecture() };
}
