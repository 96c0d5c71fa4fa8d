# syntax=docker/dockerfile:1
# Recording Storage image: a static binary on distroless, running as non-root.
#   docker build -t recording-storage .
#   docker run --rm -p 8080:8080 -e RS_AWS_ACCOUNT_ID=... -e RS_INSTANCES_SOURCE=configurator \
#       -e RS_INSTANCES_CONFIGURATOR_URL=https://... recording-storage                 # the service
#   (or mount an instance file and set RS_INSTANCES_FILE)
#   docker run --rm -i recording-storage validate - < message.json                       # a tool

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
COPY conf/recording-storage.yaml /etc/recording-storage/recording-storage.yaml
USER nonroot:nonroot
# Inside a container the default 127.0.0.1 cannot be reached from outside: listen on every interface.
ENV RS_CONFIG=/etc/recording-storage/recording-storage.yaml \
    RS_HTTP_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/recording-storage"]
CMD ["run"]
