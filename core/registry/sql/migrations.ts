// The registry's SQL schema as numbered migrations, shared by PGlite and PostgreSQL. Append new
// migrations; never edit one that has shipped (databases record which versions they applied).

export interface Migration {
  readonly version: number
  readonly name: string
  /** One or more statements; runs in one transaction with its record in schema_migrations. */
  readonly sql: string
}

// Identifiers use COLLATE "C" so that keyset pagination orders by bytes on every engine, whatever
// collation the database was created with.
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'registry',
    sql: `
      CREATE TABLE tenants (
        id            text COLLATE "C" PRIMARY KEY,
        enabled       boolean NOT NULL,
        oidc          jsonb,
        quotas        jsonb NOT NULL,
        auth_methods  jsonb NOT NULL,
        trust_anchors jsonb NOT NULL,
        settings      jsonb NOT NULL,
        version       integer NOT NULL,
        created_at    timestamptz NOT NULL,
        updated_at    timestamptz NOT NULL
      );

      CREATE TABLE devices (
        tenant     text COLLATE "C" NOT NULL
                   CONSTRAINT devices_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        id         text COLLATE "C" NOT NULL,
        enabled    boolean NOT NULL,
        labels     jsonb NOT NULL,
        gateways   jsonb NOT NULL,
        last_seen  timestamptz,
        version    integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant, id)
      );
      -- Label selectors are containment queries: labels @> '{"k":"v"}'.
      CREATE INDEX devices_labels ON devices USING gin (labels jsonb_path_ops);

      CREATE TABLE credentials (
        id            text COLLATE "C" PRIMARY KEY,
        tenant        text COLLATE "C" NOT NULL,
        device        text COLLATE "C" NOT NULL,
        type          text NOT NULL CHECK (type IN ('password', 'x509', 'psk', 'token')),
        enabled       boolean NOT NULL,
        expires_at    timestamptz,
        password_hash text,
        match         text CHECK (match IN ('cn', 'fingerprint')),
        subject_cn    text,
        fingerprint   text,
        identity      text,
        key_encrypted text,
        token_hash    text,
        version       integer NOT NULL,
        created_at    timestamptz NOT NULL,
        updated_at    timestamptz NOT NULL,
        CONSTRAINT credentials_device_fkey FOREIGN KEY (tenant, device)
          REFERENCES devices (tenant, id) ON DELETE CASCADE,
        CONSTRAINT credentials_material CHECK (CASE type
          WHEN 'password' THEN password_hash IS NOT NULL
          WHEN 'x509' THEN match IS NOT NULL
            AND (match <> 'cn' OR subject_cn IS NOT NULL)
            AND (match <> 'fingerprint' OR fingerprint IS NOT NULL)
          WHEN 'psk' THEN identity IS NOT NULL AND key_encrypted IS NOT NULL
          WHEN 'token' THEN token_hash IS NOT NULL
        END)
      );
      CREATE INDEX credentials_by_device ON credentials (tenant, device, id);
      CREATE UNIQUE INDEX credentials_one_password ON credentials (tenant, device) WHERE type = 'password';
      CREATE UNIQUE INDEX credentials_one_psk ON credentials (tenant, device) WHERE type = 'psk';
      CREATE UNIQUE INDEX credentials_x509_cn ON credentials (tenant, subject_cn)
        WHERE type = 'x509' AND match = 'cn';
      CREATE UNIQUE INDEX credentials_x509_fingerprint ON credentials (tenant, fingerprint)
        WHERE type = 'x509' AND match = 'fingerprint';

      CREATE TABLE api_tokens (
        id         text COLLATE "C" PRIMARY KEY,
        tenant     text COLLATE "C" NOT NULL
                   CONSTRAINT api_tokens_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        name       text NOT NULL,
        role       text NOT NULL CHECK (role IN ('admin', 'manager', 'reader')),
        token_hash text NOT NULL,
        expires_at timestamptz,
        version    integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      );
      CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant, id);

      -- Written in the same transaction as the change it records; a relay publishes and deletes.
      CREATE TABLE registry_outbox (
        seq        bigserial PRIMARY KEY,
        change     jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'processing',
    sql: `
      CREATE TABLE channel_schemas (
        tenant     text COLLATE "C" NOT NULL
                   CONSTRAINT channel_schemas_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        channel    text COLLATE "C" NOT NULL,
        schema     jsonb NOT NULL,
        version    integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant, channel)
      );

      CREATE TABLE route_tables (
        tenant     text COLLATE "C" PRIMARY KEY
                   CONSTRAINT route_tables_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        rules      jsonb NOT NULL,
        version    integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      );

      -- Filled from the dead-letter topic by the processors; trimmed per tenant.
      CREATE TABLE dead_letters (
        tenant           text COLLATE "C" NOT NULL
                         CONSTRAINT dead_letters_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        partition        integer NOT NULL,
        "offset"         bigint NOT NULL,
        id               text NOT NULL,
        device           text,
        type             text,
        subject          text,
        step             text NOT NULL,
        reason           text NOT NULL,
        detail           text,
        first_failure    timestamptz NOT NULL,
        dead_lettered_at timestamptz NOT NULL,
        content_type     text,
        data             bytea,
        PRIMARY KEY (tenant, partition, "offset")
      );
      CREATE INDEX dead_letters_by_time ON dead_letters (tenant, dead_lettered_at, partition, "offset");

      -- A tenant's topics outlive it by a grace period; written in the deleting transaction.
      CREATE TABLE tenant_tombstones (
        tenant     text COLLATE "C" PRIMARY KEY,
        deleted_at timestamptz NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'webhook subscriptions',
    sql: `
      CREATE TABLE webhook_subscriptions (
        tenant           text COLLATE "C" NOT NULL
                         CONSTRAINT webhook_subscriptions_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        id               text COLLATE "C" NOT NULL,
        url              text NOT NULL,
        filter           jsonb NOT NULL,
        mode             text NOT NULL,
        batch_size       integer,
        secret_encrypted text NOT NULL,
        headers          jsonb NOT NULL,
        timeout_ms       integer NOT NULL,
        retry            jsonb NOT NULL,
        state            text NOT NULL,
        version          integer NOT NULL,
        created_at       timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL,
        PRIMARY KEY (tenant, id)
      );
    `,
  },
  {
    version: 4,
    name: 'webhook operations',
    sql: `
      -- The subscription of a webhook dead letter (header tributary_subscription); null for others.
      ALTER TABLE dead_letters ADD COLUMN subscription text COLLATE "C";
      CREATE INDEX dead_letters_by_subscription
        ON dead_letters (tenant, subscription, dead_lettered_at, partition, "offset");

      -- A replay request: the delivery engine restarts the subscription's group at replay_from
      -- whenever replay_generation changes.
      ALTER TABLE webhook_subscriptions ADD COLUMN replay_from timestamptz;
      ALTER TABLE webhook_subscriptions ADD COLUMN replay_generation integer NOT NULL DEFAULT 0;

      -- Failed delivery attempts, the newest few per subscription, for the API.
      CREATE TABLE webhook_errors (
        seq          bigserial PRIMARY KEY,
        tenant       text COLLATE "C" NOT NULL,
        subscription text COLLATE "C" NOT NULL,
        at           timestamptz NOT NULL,
        webhook_id   text NOT NULL,
        attempt      integer NOT NULL,
        status       integer,
        error        text NOT NULL,
        CONSTRAINT webhook_errors_subscription_fkey FOREIGN KEY (tenant, subscription)
          REFERENCES webhook_subscriptions (tenant, id) ON DELETE CASCADE
      );
      CREATE INDEX webhook_errors_by_subscription ON webhook_errors (tenant, subscription, seq);
    `,
  },
  {
    version: 5,
    name: 'command queue',
    sql: `
      -- Commands waiting for their device (core/registry/command-queue.ts), in routing order (seq).
      CREATE TABLE command_queue (
        seq           bigserial PRIMARY KEY,
        id            text COLLATE "C" NOT NULL UNIQUE,
        tenant        text COLLATE "C" NOT NULL,
        device        text COLLATE "C" NOT NULL,
        name          text NOT NULL,
        request_id    text,
        content_type  text,
        payload       bytea NOT NULL,
        sent_at       timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL,
        origin        text NOT NULL,
        fport         integer,
        downlink      text,
        traceparent   text,
        claimed_by    text,
        claimed_until timestamptz
      );
      CREATE INDEX command_queue_by_device ON command_queue (tenant, device, seq);
      CREATE INDEX command_queue_by_expiry ON command_queue (expires_at);
    `,
  },
  {
    version: 6,
    name: 'webhook re-drive and stats',
    sql: `
      -- Re-drive of a subscription's dead letters: the API sets redrive_requested_at, a delivery
      -- engine claims the row until redrive_claimed_until, reads the record back from the
      -- dead-letter topic at (partition, offset) and sends it again; redriven_at ends it
      -- (redrive_outcome delivered, or dead-lettered again as a new letter) and hides the row.
      ALTER TABLE dead_letters ADD COLUMN redrive_requested_at timestamptz;
      ALTER TABLE dead_letters ADD COLUMN redrive_claimed_until timestamptz;
      ALTER TABLE dead_letters ADD COLUMN redriven_at timestamptz;
      ALTER TABLE dead_letters ADD COLUMN redrive_outcome text;
      CREATE INDEX dead_letters_redrive ON dead_letters (tenant, subscription)
        WHERE redrive_requested_at IS NOT NULL;

      -- Delivery counters per subscription, added to by every delivery engine (additive upserts).
      CREATE TABLE webhook_stats (
        tenant          text COLLATE "C" NOT NULL,
        subscription    text COLLATE "C" NOT NULL,
        attempts        bigint NOT NULL DEFAULT 0,
        delivered       bigint NOT NULL DEFAULT 0,
        failed_attempts bigint NOT NULL DEFAULT 0,
        dead_lettered   bigint NOT NULL DEFAULT 0,
        last_success_at timestamptz,
        last_failure_at timestamptz,
        -- The consumer lag of the subscription's group, as an engine last measured it.
        lag             bigint,
        lag_at          timestamptz,
        PRIMARY KEY (tenant, subscription),
        CONSTRAINT webhook_stats_subscription_fkey FOREIGN KEY (tenant, subscription)
          REFERENCES webhook_subscriptions (tenant, id) ON DELETE CASCADE
      );
    `,
  },
  {
    version: 7,
    name: 'device configuration',
    sql: `
      -- The application version a device runs; selects a level of its desired configuration.
      ALTER TABLE devices ADD COLUMN app_version text COLLATE "C";
      CREATE INDEX devices_by_app_version ON devices (tenant, app_version, id) WHERE app_version IS NOT NULL;

      -- Desired configuration of a tenant: app_version '' is the tenant default, any other the
      -- document of devices running that version (core/registry/device-config.ts merges them).
      CREATE TABLE config_documents (
        tenant      text COLLATE "C" NOT NULL
                    CONSTRAINT config_documents_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        app_version text COLLATE "C" NOT NULL,
        document    jsonb NOT NULL,
        version     integer NOT NULL,
        created_at  timestamptz NOT NULL,
        updated_at  timestamptz NOT NULL,
        PRIMARY KEY (tenant, app_version)
      );

      -- The device level, gone with its device.
      CREATE TABLE device_configs (
        tenant     text COLLATE "C" NOT NULL,
        device     text COLLATE "C" NOT NULL,
        document   jsonb NOT NULL,
        version    integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant, device),
        CONSTRAINT device_configs_device_fkey FOREIGN KEY (tenant, device)
          REFERENCES devices (tenant, id) ON DELETE CASCADE
      );
    `,
  },
  {
    version: 8,
    name: 'device configuration state',
    sql: `
      -- What each device was sent and what it reported applying (core/registry/sql/config-state.ts):
      -- sent_ids holds the newest configuration ids sent (newest first), so that a report of an id
      -- never sent is refused. Not a registry change: neither versioned nor in the outbox.
      CREATE TABLE device_config_state (
        tenant             text COLLATE "C" NOT NULL,
        device             text COLLATE "C" NOT NULL,
        sent_ids           jsonb NOT NULL,
        delivered_id       text NOT NULL,
        delivered_at       timestamptz NOT NULL,
        delivered_protocol text NOT NULL,
        applied_id         text,
        status_code        integer,
        reason_phrase      text,
        applied_at         timestamptz,
        applied_protocol   text,
        PRIMARY KEY (tenant, device),
        CONSTRAINT device_config_state_device_fkey FOREIGN KEY (tenant, device)
          REFERENCES devices (tenant, id) ON DELETE CASCADE
      );
    `,
  },
  {
    version: 9,
    name: 'device files',
    sql: `
      -- Device files: the metadata of each object in the blob store (the key is derived from
      -- tenant, device and id). A row is created pending with the hash of its one-time upload
      -- token; the upload claims the token (token_hash back to NULL) and then marks the row
      -- uploaded in the same transaction as its event in event_outbox.
      CREATE TABLE files (
        tenant       text COLLATE "C" NOT NULL
                     CONSTRAINT files_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        id           text COLLATE "C" NOT NULL,
        device       text COLLATE "C" NOT NULL,
        name         text COLLATE "C" NOT NULL,
        size         bigint NOT NULL CHECK (size >= 0),
        sha256       text,
        content_type text NOT NULL,
        state        text NOT NULL CHECK (state IN ('pending', 'uploaded')),
        token_hash   text UNIQUE,
        created_at   timestamptz NOT NULL,
        uploaded_at  timestamptz,
        -- pending: when the upload token lapses; uploaded: NULL (kept until deleted).
        expires_at   timestamptz,
        PRIMARY KEY (tenant, id),
        CONSTRAINT files_device_fkey FOREIGN KEY (tenant, device)
          REFERENCES devices (tenant, id) ON DELETE CASCADE
      );
      CREATE INDEX files_by_device ON files (tenant, device, id);
      CREATE INDEX files_by_name ON files (tenant, name, id);
      CREATE INDEX files_pending_expiry ON files (expires_at) WHERE state = 'pending';

      -- Events written in the same transaction as the state they announce (a file uploaded); a
      -- relay publishes them to the ingress topic and deletes them. The event is kept as its
      -- attributes and data, so it is encoded by the same codec as every other event.
      CREATE TABLE event_outbox (
        seq        bigserial PRIMARY KEY,
        attributes jsonb NOT NULL,
        data       bytea,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 10,
    name: 'configuration changed events',
    sql: `
      -- Writes that may change the effective configuration of some devices, recorded in the same
      -- transaction as the write; core/registry/config-fanout.ts pages through the devices each one
      -- touches and announces io.tributary.config.changed.v1 for those whose id changed.
      -- kind 'document': a level's document was written (previous: the document before it);
      -- kind 'app-version': a device's appVersion changed (previous_app_version: the one before).
      CREATE TABLE config_fanout (
        seq                  bigserial PRIMARY KEY,
        tenant               text COLLATE "C" NOT NULL
                             CONSTRAINT config_fanout_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        kind                 text NOT NULL CHECK (kind IN ('document', 'app-version')),
        level                text NOT NULL CHECK (level IN ('tenant', 'app-version', 'device')),
        app_version          text COLLATE "C",
        device               text COLLATE "C",
        previous             jsonb,
        previous_app_version text COLLATE "C",
        -- The last device id done: the next page starts after it.
        after_device         text COLLATE "C",
        created_at           timestamptz NOT NULL DEFAULT now()
      );

      -- The configuration id last announced in a config.changed event for each device.
      CREATE TABLE config_announced (
        tenant    text COLLATE "C" NOT NULL,
        device    text COLLATE "C" NOT NULL,
        config_id text NOT NULL,
        PRIMARY KEY (tenant, device),
        CONSTRAINT config_announced_device_fkey FOREIGN KEY (tenant, device)
          REFERENCES devices (tenant, id) ON DELETE CASCADE
      );
    `,
  },
  {
    version: 11,
    name: 'blob sweeps',
    sql: `
      -- Objects of the blob store whose file row is gone, whatever removed it (a file deleted, an
      -- upload abandoned or lapsed, its device or tenant deleted by cascade): a trigger records
      -- each in the same transaction, and the blob sweeper deletes the object and then the row,
      -- again later when the store fails. A file id is never reused, so its object has no other owner.
      CREATE TABLE blob_sweeps (
        tenant     text COLLATE "C" NOT NULL,
        id         text COLLATE "C" NOT NULL,
        device     text COLLATE "C" NOT NULL,
        attempts   integer NOT NULL DEFAULT 0,
        -- Not tried again before this (a lease while one process sweeps it, a backoff after a failure).
        not_before timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, id)
      );
      CREATE INDEX blob_sweeps_due ON blob_sweeps (not_before);
      CREATE FUNCTION files_sweep_object() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO blob_sweeps (tenant, id, device) VALUES (OLD.tenant, OLD.id, OLD.device)
          ON CONFLICT DO NOTHING;
        RETURN OLD;
      END
      $$;
      CREATE TRIGGER files_sweep_object AFTER DELETE ON files
        FOR EACH ROW EXECUTE FUNCTION files_sweep_object();
    `,
  },
  {
    version: 12,
    name: 'configuration rules',
    sql: `
      -- Label-selector rules of the desired configuration (docs/config.md, "Rules"): a device whose
      -- labels include every pair of the selector gets the document, merged after its application
      -- version's and before its own, rules in priority order (then name).
      CREATE TABLE config_rules (
        tenant     text COLLATE "C" NOT NULL
                   CONSTRAINT config_rules_tenant_fkey REFERENCES tenants (id) ON DELETE CASCADE,
        name       text COLLATE "C" NOT NULL,
        selector   jsonb NOT NULL,
        priority   integer NOT NULL,
        document   jsonb NOT NULL,
        version    integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (tenant, name)
      );

      -- Fan-out jobs of rules (level 'rule': previous holds the rule before the write, null when it
      -- was created) and of a device whose labels or appVersion changed (kind 'device':
      -- previous_labels and previous_app_version hold them before the write).
      ALTER TABLE config_fanout
        DROP CONSTRAINT config_fanout_kind_check,
        DROP CONSTRAINT config_fanout_level_check,
        ADD CONSTRAINT config_fanout_kind_check CHECK (kind IN ('document', 'app-version', 'device')),
        ADD CONSTRAINT config_fanout_level_check CHECK (level IN ('tenant', 'app-version', 'device', 'rule')),
        ADD COLUMN rule text COLLATE "C",
        ADD COLUMN previous_labels jsonb;
    `,
  },
  {
    version: 13,
    name: 'published files',
    sql: `
      -- Files an operator published for devices to download: to one device, or to a folder that
      -- every device of the tenant sees. Goes with its file, and with the device it was published to.
      CREATE TABLE file_publications (
        tenant       text COLLATE "C" NOT NULL,
        file_id      text COLLATE "C" NOT NULL,
        device       text COLLATE "C",
        folder       text COLLATE "C",
        published_at timestamptz NOT NULL,
        CONSTRAINT file_publications_target CHECK ((device IS NULL) <> (folder IS NULL)),
        CONSTRAINT file_publications_file_fkey FOREIGN KEY (tenant, file_id)
          REFERENCES files (tenant, id) ON DELETE CASCADE,
        -- MATCH SIMPLE: a folder's row (device NULL) references no device.
        CONSTRAINT file_publications_device_fkey FOREIGN KEY (tenant, device)
          REFERENCES devices (tenant, id) ON DELETE CASCADE
      );
      CREATE UNIQUE INDEX file_publications_to_device ON file_publications (tenant, device, file_id)
        WHERE device IS NOT NULL;
      CREATE UNIQUE INDEX file_publications_to_folder ON file_publications (tenant, folder, file_id)
        WHERE folder IS NOT NULL;
      CREATE INDEX file_publications_of_file ON file_publications (tenant, file_id);
    `,
  },
]
