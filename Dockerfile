# syntax=docker/dockerfile:1
#
# pgproxy image: one static binary, two modes.
#   explicit mode (default): runs as uid 65532, no capabilities, read-only root
#   transparent mode:        the DaemonSet passes `args: ["agent"]` and runs the
#                            same image as uid 0 with BPF, NET_ADMIN, SYS_ADMIN
#                            and SYS_RESOURCE (see deploy/README.md for why)
#
# Why cgo + a fully static link, and not CGO_ENABLED=0 or a glibc base image:
# the SQL parser is pg_query_go, i.e. PostgreSQL's own parser compiled from C,
# so cgo is required. Linking it statically on the Debian builder
# (-linkmode external -extldflags "-static") gives a binary with no ELF
# interpreter and no shared libraries, so the final stage can be
# distroless/static (CA bundle, tzdata, /etc/passwd with nonroot=65532, no
# shell, no libc) instead of a glibc base that must match the builder's glibc.
# -tags netgo,osusergo keep name resolution and user lookup in pure Go: a
# static glibc cannot load NSS modules, and the linker would warn about
# getaddrinfo/getpwnam otherwise. The binary uses none of glibc's
# dlopen-dependent features, so static glibc is safe here.
#
# The exact `go build` line below was run outside Docker on Debian 12
# (gcc 12, glibc 2.36, the same as the bookworm builder): `file` reports
# "statically linked" and `ldd` "not a dynamic executable" (deploy/README.md).
#
# Multi-arch: cgo means no cross-compilation from this stage; build each
# platform natively or under emulation (docker buildx build --platform ...).

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Module downloads get their own layer: it only changes with go.mod/go.sum.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
# .dockerignore admits only the packages the binary is built from. The eBPF
# objects are committed bpf2go output, so no clang is needed here.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
        -ldflags '-s -w -linkmode external -extldflags "-static"' \
        -o /out/pgproxy ./cmd/pgproxy \
 # Refuse to produce an image whose binary needs a dynamic loader: the
 # final stage has none.
 && if readelf -l /out/pgproxy | grep -q 'program interpreter'; then \
        echo 'pgproxy is dynamically linked' >&2; exit 1; \
    fi \
 && /out/pgproxy --help >/dev/null

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pgproxy /usr/local/bin/pgproxy
# 65532 is distroless' "nonroot". Explicit mode runs as this user; the agent
# DaemonSet overrides it with runAsUser: 0 because Kubernetes gives added
# capabilities to a non-root user only in its bounding set, not as
# effective/ambient ones, and pgproxy re-executes itself once at start-up.
USER 65532:65532
# 5432: LISTEN_ADDR (explicit mode); 8080: HEALTH_CHECK_ADDR (/health,
# /ready, /metrics). The agent's ports are set in deploy/agent-configmap.yaml.
EXPOSE 5432 8080
ENTRYPOINT ["/usr/local/bin/pgproxy"]
