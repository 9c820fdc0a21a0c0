-- 0001: the append-only event store. Public contract: docs/API.md ("The audit schema").
--
-- Roles (NOLOGIN groups; deployments grant them to login users):
--   audit_owner   owns every object; used only by migrations
--   audit_writer  the ingestor: INSERT events and dead letters, nothing else that mutates
--   audit_reader  the query server and analysts: SELECT only
-- The migration user needs CREATEROLE (or superuser) the first time, to create the groups.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_owner') THEN
    CREATE ROLE audit_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_writer') THEN
    CREATE ROLE audit_writer NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_reader') THEN
    CREATE ROLE audit_reader NOLOGIN;
  END IF;
  IF NOT pg_catalog.pg_has_role(current_user, 'audit_owner', 'MEMBER') THEN
    EXECUTE pg_catalog.format('GRANT audit_owner TO %I', current_user);
  END IF;
END
$$;

-- Created by the migrating user (who may create schemas in this database) and handed to
-- audit_owner, which itself gets no database-wide privilege.
CREATE SCHEMA audit AUTHORIZATION audit_owner;
SET LOCAL ROLE audit_owner;
REVOKE ALL ON SCHEMA audit FROM PUBLIC;

-- One row per event. `position` is global, gapless and in commit order (see append_head).
CREATE TABLE audit.events (
  position          bigint      NOT NULL,
  event_id          text        NOT NULL,
  source            text        NOT NULL,
  type              text        NOT NULL,
  spec_version      text        NOT NULL,
  subject           text        NOT NULL,
  occurred_at       timestamptz NOT NULL,
  recorded_at       timestamptz NOT NULL,
  data_content_type text,
  data_schema       text,
  data              jsonb,
  data_bytes        bytea,
  correlation_id    text,
  causation_id      text,
  actor             text,
  tenant            text,
  traceparent       text,
  sequence          bigint,
  extensions        jsonb,
  kafka_topic       text        NOT NULL,
  kafka_partition   integer     NOT NULL,
  kafka_offset      bigint      NOT NULL,
  content_hash      bytea       NOT NULL,
  CONSTRAINT events_pkey PRIMARY KEY (position),
  CONSTRAINT events_source_event_id_key UNIQUE (source, event_id),
  CONSTRAINT events_position_positive CHECK (position > 0),
  CONSTRAINT events_one_data CHECK (data IS NULL OR data_bytes IS NULL),
  CONSTRAINT events_content_hash_sha256 CHECK (octet_length(content_hash) = 32)
);

COMMENT ON TABLE audit.events IS
  'Append-only audit log of business events (CloudEvents 1.0). See docs/API.md.';
COMMENT ON COLUMN audit.events.position IS
  'Global position: 1, 2, 3, ... gapless, in commit order.';
COMMENT ON COLUMN audit.events.occurred_at IS 'CloudEvents time: when it happened.';
COMMENT ON COLUMN audit.events.recorded_at IS
  'When the store committed it; non-decreasing in position.';
COMMENT ON COLUMN audit.events.data IS 'Event data when its content type is JSON.';
COMMENT ON COLUMN audit.events.data_bytes IS 'Event data of any other content type, verbatim.';
COMMENT ON COLUMN audit.events.content_hash IS
  'SHA-256 of the canonical content encoding (docs/API.md).';

-- One subject's events in order (order history).
CREATE INDEX events_subject_position_idx ON audit.events (subject, position);
-- A business flow across services.
CREATE INDEX events_correlation_id_idx ON audit.events (correlation_id, position)
  WHERE correlation_id IS NOT NULL;
-- Time ranges. recorded_at follows position exactly; occurred_at nearly so (late events
-- widen a block range but stay correct), which is what BRIN summarises cheaply.
CREATE INDEX events_recorded_at_brin ON audit.events USING brin (recorded_at)
  WITH (pages_per_range = 32);
CREATE INDEX events_occurred_at_brin ON audit.events USING brin (occurred_at)
  WITH (pages_per_range = 32);

-- Messages the ingestor could not store as events, with everything needed to replay them.
CREATE TABLE audit.dead_letters (
  id                   bigint      GENERATED ALWAYS AS IDENTITY,
  kafka_topic          text        NOT NULL,
  kafka_partition      integer     NOT NULL,
  kafka_offset         bigint      NOT NULL,
  kafka_timestamp      timestamptz,
  raw_key              bytea,
  raw_header_keys      bytea[]     NOT NULL,
  raw_header_values    bytea[]     NOT NULL,
  raw_value            bytea,
  error_class          text        NOT NULL,
  reason               text        NOT NULL,
  event_source         text,
  event_id             text,
  conflicting_position bigint,
  received_at          timestamptz NOT NULL,
  CONSTRAINT dead_letters_pkey PRIMARY KEY (id),
  CONSTRAINT dead_letters_provenance_key UNIQUE (kafka_topic, kafka_partition, kafka_offset),
  CONSTRAINT dead_letters_headers_paired
    CHECK (cardinality(raw_header_keys) = cardinality(raw_header_values)),
  CONSTRAINT dead_letters_error_class CHECK (error_class IN (
    'undecodable', 'missing_attribute', 'invalid_attribute', 'invalid_time', 'invalid_data',
    'oversized', 'conflict', 'rejected_by_store'))
);

COMMENT ON TABLE audit.dead_letters IS
  'Kafka messages that could not be stored as events, verbatim, with the reason.';
COMMENT ON COLUMN audit.dead_letters.raw_header_keys IS
  'Kafka header names in order (bytes); raw_header_values holds the values (NULL = null).';
COMMENT ON COLUMN audit.dead_letters.conflicting_position IS
  'For error_class conflict: the stored event with the same (source, id).';

CREATE INDEX dead_letters_received_at_idx ON audit.dead_letters (received_at);

-- The head of the log: the last assigned position. Writers serialise on this row, which is
-- what keeps positions gapless and in commit order (docs/ARCHITECTURE.md, "Positions").
CREATE TABLE audit.append_head (
  singleton   boolean     NOT NULL DEFAULT true,
  position    bigint      NOT NULL,
  recorded_at timestamptz NOT NULL,
  CONSTRAINT append_head_pkey PRIMARY KEY (singleton),
  CONSTRAINT append_head_singleton CHECK (singleton)
);
COMMENT ON TABLE audit.append_head IS
  'The last position and its recorded_at. Writers lock this row (audit.begin_append).';
INSERT INTO audit.append_head (singleton, position, recorded_at)
  VALUES (true, 0, '-infinity');

-- Called by a writer at the start of its transaction: waits for and takes the append lock,
-- and returns the current head and the time to stamp recorded_at with (microseconds since
-- the Unix epoch; never earlier than the head's, even if the clock steps back). The lock is
-- held until the transaction ends, so transactions append strictly one after another.
CREATE FUNCTION audit.begin_append(OUT head_position bigint, OUT recorded_at_micros bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT h.position,
         (extract(epoch FROM greatest(pg_catalog.clock_timestamp(), h.recorded_at))
          * 1000000)::bigint
  FROM audit.append_head h
  FOR UPDATE
$$;
REVOKE ALL ON FUNCTION audit.begin_append() FROM PUBLIC;

-- After each INSERT/COPY into events: the new rows must continue the log exactly (positions
-- head+1 .. head+n, recorded_at not before the head's); then the head advances and listeners
-- (LISTEN audit_events) are woken with the new head position when the transaction commits.
CREATE FUNCTION audit.events_continue_log() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  head bigint;
  head_recorded timestamptz;
  n bigint;
  lo bigint;
  hi bigint;
  first_recorded timestamptz;
  last_recorded timestamptz;
BEGIN
  SELECT count(*), min(position), max(position), min(recorded_at), max(recorded_at)
    INTO n, lo, hi, first_recorded, last_recorded
    FROM new_rows;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  SELECT h.position, h.recorded_at INTO head, head_recorded
    FROM audit.append_head h FOR UPDATE;
  IF lo <> head + 1 OR hi - lo + 1 <> n THEN
    RAISE EXCEPTION 'positions % .. % (% rows) do not continue the log at head %',
      lo, hi, n, head
      USING ERRCODE = 'AU001',
            HINT = 'call audit.begin_append() first and number rows from head + 1';
  END IF;
  IF first_recorded < head_recorded THEN
    RAISE EXCEPTION 'recorded_at % is earlier than the head''s %', first_recorded, head_recorded
      USING ERRCODE = 'AU001',
            HINT = 'stamp recorded_at with the time audit.begin_append() returned';
  END IF;
  UPDATE audit.append_head SET position = hi, recorded_at = last_recorded;
  PERFORM pg_catalog.pg_notify('audit_events', hi::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER events_continue_log AFTER INSERT ON audit.events
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION audit.events_continue_log();

-- Append-only, for everyone including the owner: no UPDATE, DELETE or TRUNCATE.
CREATE FUNCTION audit.reject_mutation() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION '% on %.% is not allowed: the audit log is append-only',
    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'AU002';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();
CREATE TRIGGER dead_letters_append_only BEFORE UPDATE OR DELETE ON audit.dead_letters
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();
CREATE TRIGGER dead_letters_no_truncate BEFORE TRUNCATE ON audit.dead_letters
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();

-- Privileges. Only what each role needs.
GRANT USAGE ON SCHEMA audit TO audit_writer, audit_reader;

GRANT INSERT ON audit.events TO audit_writer;
-- Idempotency check under the append lock: does (source, id) exist, with which content?
GRANT SELECT (position, source, event_id, content_hash) ON audit.events TO audit_writer;
GRANT INSERT ON audit.dead_letters TO audit_writer;
GRANT SELECT (kafka_topic, kafka_partition, kafka_offset) ON audit.dead_letters TO audit_writer;
GRANT EXECUTE ON FUNCTION audit.begin_append() TO audit_writer;

GRANT SELECT ON audit.events, audit.dead_letters, audit.append_head TO audit_reader;
