-- 0002: tamper evidence (docs/VERIFICATION.md).
--
-- Every event gets a leaf hash (RFC 6962 leaf over its canonical record) and a chain hash
-- linking it to the event before; the complete Merkle subtrees of 256 leaves and more are
-- kept, so any proof needs at most a few hundred leaf hashes besides them; and signed
-- checkpoints record the tree's root at a size. Writers compute all of it on the append path;
-- nothing here is trusted by verifiers, who recompute.

SET LOCAL ROLE audit_owner;

-- The canonical record of an event, in SQL: an independent implementation of the C++ one
-- (audit/record.h) for auditors who verify with psql.
CREATE FUNCTION audit.record_bytes(pos bigint, recorded timestamptz, topic text, part integer,
                                   off bigint, content_hash bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog
AS $$
  SELECT '\x61756469742e76312e4576656e745265636f726400'::bytea  -- "audit.v1.EventRecord\0"
         || int8send(pos)
         || int8send((extract(epoch FROM recorded) * 1000000)::bigint)
         || int4send(octet_length(topic)) || convert_to(topic, 'UTF8')
         || int4send(part)
         || int8send(off)
         || content_hash
$$;

CREATE FUNCTION audit.leaf_hash(record bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT sha256('\x00'::bytea || record) $$;

CREATE FUNCTION audit.chain_hash(previous bytea, leaf bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog
AS $$ SELECT sha256('\x02'::bytea || previous || leaf) $$;

ALTER TABLE audit.events ADD COLUMN leaf_hash bytea, ADD COLUMN chain_hash bytea;
COMMENT ON COLUMN audit.events.leaf_hash IS
  'SHA-256(0x00 || canonical record): the event''s leaf in the log''s Merkle tree.';
COMMENT ON COLUMN audit.events.chain_hash IS
  'SHA-256(0x02 || previous chain_hash || leaf_hash); 32 zero bytes before position 1.';

-- Complete Merkle subtrees of level >= 8: node (level, node_index) covers the leaves of
-- positions node_index * 2^level + 1 .. (node_index + 1) * 2^level.
CREATE TABLE audit.merkle_nodes (
  level      smallint NOT NULL,
  node_index bigint   NOT NULL,
  hash       bytea    NOT NULL,
  CONSTRAINT merkle_nodes_pkey PRIMARY KEY (level, node_index),
  CONSTRAINT merkle_nodes_level CHECK (level >= 8 AND level < 63),
  CONSTRAINT merkle_nodes_index CHECK (node_index >= 0),
  CONSTRAINT merkle_nodes_sha256 CHECK (octet_length(hash) = 32)
);
COMMENT ON TABLE audit.merkle_nodes IS
  'Hashes of the complete Merkle subtrees of 256 leaves and more (docs/VERIFICATION.md).';

-- The checkpoint log: signed Merkle roots, key rotations and gaps, chained by signature.
CREATE TABLE audit.checkpoints (
  seq                     bigint      NOT NULL,
  kind                    text        NOT NULL,
  tree_size               bigint      NOT NULL,
  root_hash               bytea       NOT NULL,
  chain_hash              bytea       NOT NULL,
  created_at              timestamptz NOT NULL,
  key_id                  text        NOT NULL,
  public_key              bytea       NOT NULL,
  previous_signature_hash bytea       NOT NULL,
  note                    text        NOT NULL DEFAULT '',
  signature               bytea       NOT NULL,
  endorsement             bytea,
  endorsing_key_id        text,
  CONSTRAINT checkpoints_pkey PRIMARY KEY (seq),
  CONSTRAINT checkpoints_seq CHECK (seq > 0),
  CONSTRAINT checkpoints_kind CHECK (kind IN ('checkpoint', 'key_rotation', 'gap')),
  CONSTRAINT checkpoints_tree_size CHECK (tree_size >= 0),
  CONSTRAINT checkpoints_hashes CHECK (octet_length(root_hash) = 32
    AND octet_length(chain_hash) = 32 AND octet_length(previous_signature_hash) = 32)
);
CREATE INDEX checkpoints_tree_size ON audit.checkpoints (tree_size);
COMMENT ON TABLE audit.checkpoints IS
  'Signed checkpoints of the log (docs/VERIFICATION.md); copies belong outside the database.';

-- Fill in the hashes of events stored before this migration, in position order, and their
-- Merkle subtrees. Only a fresh column is written; the append-only trigger is suspended for
-- this statement alone, inside this transaction.
ALTER TABLE audit.events DISABLE TRIGGER events_append_only;
DO $$
DECLARE
  r record;
  leaf bytea;
  chain bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
  levels integer[] := '{}';
  hashes bytea[] := '{}';
  c integer;
  n bigint := 0;
  merged bytea;
  lv integer;
BEGIN
  FOR r IN SELECT position, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash
           FROM audit.events ORDER BY position LOOP
    leaf := audit.leaf_hash(audit.record_bytes(r.position, r.recorded_at, r.kafka_topic,
                                               r.kafka_partition, r.kafka_offset, r.content_hash));
    chain := audit.chain_hash(chain, leaf);
    UPDATE audit.events SET leaf_hash = leaf, chain_hash = chain WHERE position = r.position;
    n := n + 1;
    levels := levels || 0;
    hashes := hashes || leaf;
    c := cardinality(levels);
    WHILE c >= 2 AND levels[c] = levels[c - 1] LOOP
      merged := sha256('\x01'::bytea || hashes[c - 1] || hashes[c]);
      lv := levels[c] + 1;
      levels := levels[1:c - 2] || lv;
      hashes := hashes[1:c - 2] || merged;
      c := cardinality(levels);
      IF lv >= 8 THEN
        INSERT INTO audit.merkle_nodes (level, node_index, hash) VALUES (lv, (n >> lv) - 1, merged);
      END IF;
    END LOOP;
  END LOOP;
END
$$;
ALTER TABLE audit.events ENABLE TRIGGER events_append_only;

ALTER TABLE audit.events
  ALTER COLUMN leaf_hash SET NOT NULL,
  ALTER COLUMN chain_hash SET NOT NULL,
  ADD CONSTRAINT events_leaf_hash_sha256 CHECK (octet_length(leaf_hash) = 32),
  ADD CONSTRAINT events_chain_hash_sha256 CHECK (octet_length(chain_hash) = 32);

ALTER TABLE audit.append_head ADD COLUMN chain_hash bytea NOT NULL
  DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000';
UPDATE audit.append_head SET chain_hash = coalesce(
  (SELECT chain_hash FROM audit.events ORDER BY position DESC LIMIT 1), chain_hash);

-- begin_append also returns the chain hash to continue from.
DROP FUNCTION audit.begin_append();
CREATE FUNCTION audit.begin_append(OUT head_position bigint, OUT recorded_at_micros bigint,
                                   OUT head_chain_hash bytea)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT h.position,
         (extract(epoch FROM greatest(pg_catalog.clock_timestamp(), h.recorded_at))
          * 1000000)::bigint,
         h.chain_hash
  FROM audit.append_head h
  FOR UPDATE
$$;
REVOKE ALL ON FUNCTION audit.begin_append() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.begin_append() TO audit_writer;

-- The continuity trigger now also checks that the batch's chain continues the head's, and
-- moves the head's chain hash.
CREATE OR REPLACE FUNCTION audit.events_continue_log() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  head bigint;
  head_recorded timestamptz;
  head_chain bytea;
  n bigint;
  lo bigint;
  hi bigint;
  first_recorded timestamptz;
  last_recorded timestamptz;
  first_leaf bytea;
  first_chain bytea;
  last_chain bytea;
BEGIN
  SELECT count(*), min(position), max(position), min(recorded_at), max(recorded_at)
    INTO n, lo, hi, first_recorded, last_recorded
    FROM new_rows;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  SELECT h.position, h.recorded_at, h.chain_hash INTO head, head_recorded, head_chain
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
  SELECT leaf_hash, chain_hash INTO first_leaf, first_chain FROM new_rows WHERE position = lo;
  SELECT chain_hash INTO last_chain FROM new_rows WHERE position = hi;
  IF first_chain <> sha256('\x02'::bytea || head_chain || first_leaf) THEN
    RAISE EXCEPTION 'the chain hash at position % does not continue the head''s chain', lo
      USING ERRCODE = 'AU001',
            HINT = 'chain from the head_chain_hash audit.begin_append() returned';
  END IF;
  UPDATE audit.append_head
    SET position = hi, recorded_at = last_recorded, chain_hash = last_chain;
  PERFORM pg_catalog.pg_notify('audit_events', hi::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER merkle_nodes_append_only BEFORE UPDATE OR DELETE ON audit.merkle_nodes
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();
CREATE TRIGGER merkle_nodes_no_truncate BEFORE TRUNCATE ON audit.merkle_nodes
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON audit.checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON audit.checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_mutation();

-- The ingestor appends nodes with its events and runs the checkpointer.
GRANT SELECT (leaf_hash, chain_hash, recorded_at) ON audit.events TO audit_writer;
GRANT SELECT, INSERT ON audit.merkle_nodes, audit.checkpoints TO audit_writer;
GRANT SELECT ON audit.merkle_nodes, audit.checkpoints TO audit_reader;
GRANT EXECUTE ON FUNCTION audit.record_bytes(bigint, timestamptz, text, integer, bigint, bytea),
  audit.leaf_hash(bytea), audit.chain_hash(bytea, bytea) TO audit_reader, audit_writer;
