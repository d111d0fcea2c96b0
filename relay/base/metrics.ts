/**
 * @module
 * Prometheus metrics of one relay instance, on prom-client with its own registry (no default
 * Node process metrics, which do not apply under Deno). Names carry units and `_total`
 * suffixes; labels never hold device, account or group ids. Parts of the relay receive the
 * {@link Metrics} object and move the counters; gauges read live state when scraped.
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Every metric of the relay. */
export class Metrics {
  readonly registry = new Registry();

  readonly messagesAccepted = new Counter({
    name: "sealpost_messages_accepted_total",
    help: "Messages committed (durable sends), excluding repeats of a client_id.",
    registers: [this.registry],
  });
  readonly messagesRejected = new Counter({
    name: "sealpost_messages_rejected_total",
    help: "Sends rejected, by error code.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly ephemeralSent = new Counter({
    name: "sealpost_ephemeral_messages_total",
    help: "Ephemeral messages relayed.",
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: "sealpost_deliveries_total",
    help: "Message frames written to WebSocket connections (live and replay).",
    labelNames: ["path"],
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: "sealpost_message_bytes_in_total",
    help: "Decoded body bytes of committed messages.",
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: "sealpost_message_bytes_out_total",
    help: "Bytes of message frames written to WebSocket connections.",
    registers: [this.registry],
  });
  readonly deliverSeconds = new Histogram({
    name: "sealpost_send_deliver_seconds",
    help: "Time from a message's commit timestamp to its live delivery to a connection.",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly dbQuerySeconds = new Histogram({
    name: "sealpost_db_query_seconds",
    help: "Database query latency, by outcome.",
    labelNames: ["outcome"],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly busLagSeconds = new Histogram({
    name: "sealpost_bus_lag_seconds",
    help:
      "Time from a message's commit on another instance to this instance reading it from the bus.",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly commitSeconds = new Histogram({
    name: "sealpost_send_commit_seconds",
    help: "Time from a send's arrival to its commit (group commit latency).",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: "sealpost_group_commit_batch_size",
    help: "Sends per group-commit transaction.",
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.registry],
  });
  readonly wsCloses = new Counter({
    name: "sealpost_websocket_closes_total",
    help: "WebSocket connections closed by the relay, by close code.",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: "sealpost_rate_limited_total",
    help: "Requests or frames refused by a rate limit, by limit.",
    labelNames: ["limit"],
    registers: [this.registry],
  });
  readonly replicaFallbacks = new Counter({
    name: "sealpost_replica_fallbacks_total",
    help: "Backlog reads sent to the primary because the read replica was behind or unreachable.",
    registers: [this.registry],
  });
  readonly backups = new Counter({
    name: "sealpost_backups_total",
    help: "Scheduled backups, by result.",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: "sealpost_http_requests_total",
    help: "HTTP requests answered, by status class.",
    labelNames: ["status"],
    registers: [this.registry],
  });

  readonly messagesExpired = new Counter({
    name: "sealpost_messages_expired_total",
    help: "Expired messages deleted by the sweeper.",
    registers: [this.registry],
  });
  readonly blobsCreated = new Counter({
    name: "sealpost_blobs_created_total",
    help: "Blobs declared with POST /v1/blobs.",
    registers: [this.registry],
  });
  readonly blobUploads = new Counter({
    name: "sealpost_blob_uploads_total",
    help: "Blob uploads checked by the relay, by result (ok, mismatch).",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly blobsDeleted = new Counter({
    name: "sealpost_blobs_deleted_total",
    help: "Blobs deleted by the sweeper, by reason (expired, orphan, group_deleted).",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly blobBytesDeleted = new Counter({
    name: "sealpost_blob_bytes_deleted_total",
    help: "Declared bytes of the blobs deleted by the sweeper.",
    registers: [this.registry],
  });
  readonly blobBytesStored = new Gauge({
    name: "sealpost_blob_bytes_stored",
    help: "Bytes of uploaded blobs, as of the last sweep.",
    registers: [this.registry],
  });
  readonly blobsStored = new Gauge({
    name: "sealpost_blobs_stored",
    help: "Uploaded blobs, as of the last sweep.",
    registers: [this.registry],
  });
  readonly devicesDeleted = new Counter({
    name: "sealpost_devices_deleted_total",
    help: "Devices deleted by inactivity cleanup.",
    registers: [this.registry],
  });
  readonly accountsDeleted = new Counter({
    name: "sealpost_accounts_deleted_total",
    help: "Accounts removed by cleanup because no device was left.",
    registers: [this.registry],
  });
  readonly devicesByStatus = new Gauge({
    name: "sealpost_devices",
    help: "Registered devices by status (active, inactive, revoked), as of the last sweep.",
    labelNames: ["status"],
    registers: [this.registry],
  });
  readonly credentialsPurged = new Counter({
    name: "sealpost_credentials_purged_total",
    help: "Expired nonces, tokens and token tombstones deleted by the sweeper.",
    registers: [this.registry],
  });
  readonly sweepSeconds = new Histogram({
    name: "sealpost_sweep_duration_seconds",
    help: "Duration of sweeper runs (expiry, blobs and cleanup) that held the sweep lock.",
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly sweeps = new Counter({
    name: "sealpost_sweeps_total",
    help: "Sweeper runs, by result (ok, skipped: another instance holds the lock, error).",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly pushResults = new Counter({
    name: "sealpost_push_wakeups_total",
    help:
      "Push wake-up attempts by this instance (the leader), by provider and result (sent, retried, failed, gone).",
    labelNames: ["provider", "result"],
    registers: [this.registry],
  });
  /** Reads the push outbox depth at scrape time; the push service sets it when it starts. */
  pushQueue: () => Promise<number> = () => Promise.resolve(0);
  readonly pushQueueDepth = ((metrics: Metrics) =>
    new Gauge({
      name: "sealpost_push_queue_depth",
      help: "Push wake-ups waiting in the outbox (cluster-wide).",
      registers: [this.registry],
      async collect() {
        this.set(await metrics.pushQueue().catch(() => 0));
      },
    }))(this);

  /** Registers a gauge whose value is read at scrape time. */
  gauge(name: string, help: string, read: () => number, labels?: Record<string, string>): void {
    const labelNames = labels ? Object.keys(labels) : [];
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        if (labels) this.set(labels, read());
        else this.set(read());
      },
    });
  }

  /** The text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
