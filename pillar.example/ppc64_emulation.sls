# ppc64_emulation: qemu-user-static for big-endian ppc64 with the F flag, and
# Adélie / Debian ppc64 container recipes (built where docker or podman runs).
ppc64_emulation:
  binfmt:
    flags: PF                 # must contain F
  containers:
    recipe_dir: /srv/labsalt/ppc64-containers
    engine: auto              # docker, podman or auto
    images:
      adelie:
        # Enabling it needs the rootfs tarball's sha256 (from the Adélie release's
        # checksum file): the rootfs is never downloaded unverified.
        enabled: false
        # rootfs_sha256: <64 hex digits>
        tag: localhost/labsalt/adelie-ppc64:1.0
        packages: [build-base, cmake]
      debian:
        suite: unstable
        packages: [build-essential, cmake]
