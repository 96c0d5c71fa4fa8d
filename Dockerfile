# syntax=docker/dockerfile:1
# Recording Storage image: a static binary on distroless, running as non-root.
#   docker build -t recording-storage .
#   docker run --rm recording-storage validate - < message.json

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits do not invalidate the module download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/recording-storage .

# static-debian12 has CA certificates and tzdata (for HTTPS to AWS and DRACOON) and no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/recording-storage /recording-storage
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/recording-storage"]
# No default command until the pipeline's "run" exists: without arguments the binary lists its commands.
