# Sealpost: one binary, built with `deno compile` (every asset embedded), in a small glibc image.
#   docker build -t sealpost .
#   docker run -p 8080:8080 -v sealpost-data:/data sealpost
# Build stage: the official Deno image, pinned to the version the project is tested with.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY main.ts ./
COPY relay ./relay
COPY admin ./admin
COPY migrations ./migrations
COPY client ./client
# Install npm packages exactly as locked, then compile for this platform.
RUN deno install --frozen --entrypoint main.ts
RUN deno task compile \
 && mkdir -p /data && chown 65532:65532 /data

# Runtime stage: distroless glibc, no shell, runs as the non-root user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/sealpost /usr/local/bin/sealpost
COPY --from=build --chown=65532:65532 /data /data
ENV SEALPOST_DATA_DIR=/data \
    SEALPOST_HOST=0.0.0.0 \
    PORT=8080 \
    SEALPOST_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/sealpost", "healthcheck"]
# SIGTERM drains: /readyz turns 503, sockets close with 1001, in-flight sends are acknowledged.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sealpost"]
CMD ["serve"]
